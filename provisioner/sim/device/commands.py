"""`provisioner sim device …`: run the reference device on a virtual board's flash."""

from __future__ import annotations

import sys
import time
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


@device_group.command("check-in")
@_DIR
@_UID
@_KEY
@click.option("--site", "site_url", required=True, help="Update listener URL, https://HOST:8444.")
@click.option("--ca", "ca_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Site CA certificate (verifies the site's TLS certificate).")
@click.option("--every", "every_s", type=click.FloatRange(min=0.1), default=None,
              help="Ask again every this many seconds (default: once, at boot).")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="Stop after this many check-ins (default: 1, or forever with --every).")
def check_in_command(directory: Path, probe_uid: str, key_path: Path, site_url: str,
                     ca_path: Path, every_s: float | None, count: int | None) -> None:
    """Boot the device and let it ask the site for its update itself (no relay).

    At boot, then every --every seconds: report an unacknowledged outcome, request, install,
    report. A check-in that fails (site unreachable, refused) is printed and, on a schedule,
    tried again at the next one.
    """
    from provisioner.relay.site_updates import UpdateSite
    from provisioner.sim.device.checkin import check_in

    device = _open(directory, probe_uid, key_path)
    device.boot()
    total = count if count is not None else (1 if every_s is None else None)
    site = UpdateSite(site_url, ca_path)
    done, failed = 0, False
    try:
        while total is None or done < total:
            if done:
                time.sleep(every_s or 0)
            done += 1
            try:
                session = check_in(device, site, progress=click.echo)
            except ProvisionerError as exc:
                click.echo(f"check-in {done} failed: {exc}", err=True)
                failed = True
                continue
            failed = False
            if session is not None and session.result is not None:
                device.boot()  # the bootloader resets into what it now runs
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        site.close()
    click.echo(f"device {device.device_id} runs {format_version(device.state.running_version)}")
    if failed:
        raise click.ClickException("the last check-in failed")
