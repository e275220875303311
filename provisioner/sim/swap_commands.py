"""``provisioner sim swap-chip``: swap a new blank chip into a virtual SWD board (board swaps)."""

from __future__ import annotations

from pathlib import Path

import click

from hw_profiles import ProfileValidationError
from provisioner.sim.swd_board import BoardStateError, replace_chip


@click.command("swap-chip")
@click.option("--dir", "directory", required=True,
              type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Directory holding the virtual boards' state files.")
@click.option("--probe-uid", default="VSWD0001", show_default=True,
              help="Unique ID of the virtual probe whose chip is swapped.")
@click.option("--chip-uid", default=None,
              help="The new chip's unique ID as hex (default: random).")
def swap_chip_command(directory: Path, probe_uid: str, chip_uid: str | None) -> None:
    """Replace the chip behind a virtual probe by a blank one.

    Waits while a session holds the board. Serial boards (sim serial) swap on SIGUSR1:
    kill -USR1 PID.
    """
    try:
        uid = replace_chip(directory, probe_uid,
                           bytes.fromhex(chip_uid) if chip_uid is not None else None)
    except (BoardStateError, ProfileValidationError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"swapped a new chip into {probe_uid} (chip UID {uid.hex()}, blank)")
