"""``provisioner sim boot``: power a virtual SWD board on and watch its firmware on USART1."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import click

from provisioner.sim.boot_runner import UsartPty, run_board
from provisioner.sim.swd_board import BoardLock, BoardStateError, load_board, save_board

CHUNK_INSTRUCTIONS = 2_000_000


def _echo(data: bytes) -> None:
    sys.stdout.write(data.decode("ascii", errors="replace").replace("\r\n", "\n"))
    sys.stdout.flush()


@click.command("boot")
@click.option("--dir", "directory", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Directory holding the virtual boards' state files.")
@click.option("--probe-uid", default="VSWD0001", show_default=True, help="Board to power on.")
@click.option("--seconds", type=float, default=None,
              help="Power off after this many seconds (default: run until Ctrl-C).")
@click.option("--pty", "use_pty", is_flag=True,
              help="Also bridge USART1 to a pseudo-terminal (its path is printed) for input.")
def sim_boot_command(directory: Path, probe_uid: str, seconds: float | None,
                     use_pty: bool) -> None:
    """Reset the board and run its firmware, printing what it sends on USART1 (115200 8N1)."""
    try:
        lock = BoardLock(directory, probe_uid)
    except BoardStateError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        board = load_board(directory, probe_uid)
        if board.peripherals is None:
            raise BoardStateError(f"{board.spec.profile_name}: USART1 is emulated for "
                                  "STM32F1 boards only")
        bridge = UsartPty(board.peripherals.usart1, echo=_echo) if use_pty else None
        if bridge is None:
            board.peripherals.usart1.on_transmit = _echo
        else:
            click.echo(f"USART1 of {probe_uid} on {bridge.port}", err=True)
        stop = threading.Event()
        if seconds is not None:
            threading.Timer(seconds, stop.set).start()
        click.echo(f"{probe_uid}: reset, running (Ctrl-C stops)", err=True)
        started = time.perf_counter()
        try:
            while not stop.is_set():
                result = run_board(board, max_instructions=CHUNK_INSTRUCTIONS, stop=stop)
                if result.stopped in ("locked_up", "halted"):
                    click.echo(f"\n{probe_uid}: core {result.stopped.replace('_', ' ')}",
                               err=True)
                    break
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            if bridge is not None:
                bridge.close()
            save_board(directory, probe_uid, board)
        click.echo(f"{probe_uid}: powered off after {time.perf_counter() - started:.1f} s",
                   err=True)
    except BoardStateError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        lock.release()
