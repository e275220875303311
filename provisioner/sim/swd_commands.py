"""``provisioner sim swd``: create a virtual SWD board that pyOCD lists through the plugin."""

from __future__ import annotations

import os
from pathlib import Path

import click

from hw_profiles import ProfileValidationError, load_profile
from provisioner.sim.swd_board import BoardStateError, create_virtual_board, state_paths
from provisioner.sim.swd_probe import ENV_VAR, PLUGIN_NAME


@click.command("swd")
@click.option("--profile", "profile_name", required=True, help="Hardware profile name.")
@click.option("--dir", "directory", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Directory holding the virtual boards' state files.")
@click.option("--probe-uid", default="VSWD0001", show_default=True,
              help="Unique ID the virtual probe reports.")
@click.option("--chip-uid", default=None,
              help="Chip unique ID as hex (default: random bytes of the profile's UID size).")
@click.option("--force", is_flag=True, help="Replace an existing board with the same probe UID.")
def sim_swd_command(profile_name: str, directory: Path, probe_uid: str, chip_uid: str | None,
                    force: bool) -> None:
    """Create a blank virtual SWD board (flash erased, readout protection off)."""
    try:
        profile = load_profile(profile_name)  # a bad profile is named before any file is looked at
        uid_bytes = bytes.fromhex(chip_uid) if chip_uid is not None else None
        if uid_bytes is None:
            uid_bytes = os.urandom(profile.chip_uid.size_bytes)
        state_path, _ = state_paths(directory, probe_uid)
        if state_path.exists() and not force:
            raise click.ClickException(f"{state_path} exists (use --force to replace it)")
        create_virtual_board(directory, probe_uid, profile_name, uid_bytes)
    except (BoardStateError, ProfileValidationError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created virtual board {probe_uid} ({profile_name}, chip UID {uid_bytes.hex()})")
    click.echo(f"export {ENV_VAR}={directory.resolve()}")
    click.echo(f"pyOCD selects it with -u {PLUGIN_NAME}:{probe_uid}")
