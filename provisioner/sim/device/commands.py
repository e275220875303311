"""`provisioner sim device …`: run the reference device on a virtual board's flash."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provisioner.crypto.signing import VerifyKey
from provisioner.errors import ProvisionerError
from provisioner.sim.device.device import ReferenceDevice
from provisioner.sim.device.records import Event
from provisioner.update.versions import format_version

_DIR = click.option("--dir", "directory", required=True,
                    type=click.Path(file_okay=False, exists=True, path_type=Path),
                    help="Directory of the virtual SWD boards (as for `sim swd`).")
_UID = click.option("--probe-uid", default="VSWD0001", show_default=True,
                    help="Which board in --dir.")
_KEY = click.option("--manufacturer-key", "key_path", required=True,
                    type=click.Path(exists=True, dir_okay=False, path_type=Path),
                    help="Manufacturer public key PEM the bootloader was built with "
                         "(`site release public-key`).")


def _open(directory: Path, probe_uid: str, key_path: Path,
          power_cut_in_slots: int | None = None) -> ReferenceDevice:
    try:
        verify_key = VerifyKey.from_pem(key_path.read_bytes())
        return ReferenceDevice.open_board(directory, probe_uid, verify_key,
                                          power_cut_in_slots=power_cut_in_slots)
    except (ProvisionerError, OSError, ValueError, KeyError) as exc:
        raise click.ClickException(f"cannot open board {probe_uid}: {exc}") from exc


@click.group("device")
def device_group() -> None:
    """The reference field-update device on a virtual board's flash."""


@device_group.command("serve")
@_DIR
@_UID
@_KEY
@click.option("--power-cut-in-slots", type=click.IntRange(min=0), default=None,
              help="Crash test: cut power (SIGKILL) before this page write (0-based) into a slot.")
def serve_command(directory: Path, probe_uid: str, key_path: Path,
                  power_cut_in_slots: int | None) -> None:
    """Boot the device and serve its link on a pseudo-terminal (path printed on stdout)."""
    from provisioner.sim.device.link_server import FdStream, open_pty, serve_link

    device = _open(directory, probe_uid, key_path, power_cut_in_slots)
    device.boot()
    fd, path = open_pty()
    click.echo(path)
    sys.stdout.flush()
    click.echo(f"device {device.device_id} runs {format_version(device.state.running_version)} "
               f"(slot {'AB'[device.state.active_slot]}); link on {path}; Ctrl-C stops", err=True)
    try:
        while True:
            serve_link(device, FdStream(fd))
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@device_group.command("status")
@_DIR
@_UID
@_KEY
def status_command(directory: Path, probe_uid: str, key_path: Path) -> None:
    """Print the boot state and the event log."""
    device = _open(directory, probe_uid, key_path)
    state = device.state
    click.echo(f"device {device.device_id}: runs {format_version(state.running_version)} from "
               f"slot {'AB'[state.active_slot]}, security counter "
               f"{format_version(state.security_counter)}, pending {state.pending.name}")
    for record in device.log():
        value = (format_version(record.value)
                 if record.event in (Event.boot, Event.request_sent, Event.install_started,
                                     Event.slot_written, Event.self_test_passed, Event.installed)
                 else f"delivery {record.value}")
        click.echo(f"  #{record.sequence:<4} {record.event.name:<17} {value:<14} "
                   f"{record.reason.name if record.reason else ''}")
