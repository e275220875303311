"""`provisioner sim` commands: serve virtual boards until Ctrl-C (one subcommand per board)."""

from __future__ import annotations

import os
import secrets
import signal
import threading
from pathlib import Path

import click

from provisioner.sim.boot_commands import sim_boot_command
from provisioner.sim.device.commands import device_group
from provisioner.sim.swap_commands import swap_chip_command
from provisioner.sim.swd_commands import sim_swd_command


def _wait_for_interrupt() -> None:
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@click.group()
def sim_group() -> None:
    """Run virtual boards for demos and tests."""


@sim_group.command("serial")
@click.option("--profile", required=True, help="Hardware profile name or TOML path.")
@click.option("--throttle-baud", type=int, help="Pace every byte as a real line at this baud.")
@click.option("--chip-uid", help="Chip UID as hex (random when omitted).")
def serial_command(profile: str, throttle_baud: int | None, chip_uid: str | None) -> None:
    """Serve an AN3155 ROM bootloader on a pseudo-terminal and print its path."""
    from hw_profiles import load_profile
    from provisioner.sim.an3155_board import VirtualSerialBoard

    loaded = load_profile(profile)
    uid = (bytes.fromhex(chip_uid) if chip_uid
           else secrets.token_bytes(loaded.chip_uid.size_bytes))
    board = VirtualSerialBoard(loaded, chip_uid=uid, throttle_baud=throttle_baud,
                               bits_per_byte=10)
    port = board.start()

    def swap(signum: int, frame: object) -> None:
        click.echo(f"chip replaced: chip_uid {board.replace_chip().hex()} (blank)", err=True)

    previous = signal.signal(signal.SIGUSR1, swap)
    try:
        click.echo(port)
        click.echo(f"{loaded.name} chip_uid {uid.hex()} on {port} (8N1); "
                   f"kill -USR1 {os.getpid()} swaps in a new chip; Ctrl-C stops", err=True)
        _wait_for_interrupt()
    finally:
        signal.signal(signal.SIGUSR1, previous)
        board.stop()


@sim_group.command("firmware")
@click.option("--profile", required=True, help="Hardware profile name or TOML path.")
@click.option("--dir", "directory", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write bootloader.hex and application.hex into.")
def firmware_command(profile: str, directory: Path) -> None:
    """Write the demo bootloader template and application for a profile (as in fixtures/).

    The template has blank ID and key zones where the profile puts them, so the site accepts
    it as a bootloader template; use it to try the system before your own firmware is ready.
    """
    from hw_profiles import load_profile
    from provisioner.sim.firmware import render

    loaded = load_profile(profile)
    directory.mkdir(parents=True, exist_ok=True)
    for file_name, text in render(loaded).items():
        (directory / file_name).write_text(text, encoding="ascii", newline="\n")
        click.echo(f"wrote {directory / file_name} ({loaded.name})")


sim_group.add_command(sim_swd_command, "swd")
sim_group.add_command(device_group, "device")
sim_group.add_command(swap_chip_command, "swap-chip")
sim_group.add_command(sim_boot_command, "boot")
