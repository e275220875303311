"""`provisioner station …`: the UI (default), enrol, status and headless run."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

from provisioner.errors import ProvisionerError, SiteUnreachable
from provisioner.hsm.pin import PIN_ENV as TOKEN_PIN_ENV
from provisioner.process import disable_core_dumps
from provisioner.prompts import read_secret
from provisioner.station.events import ignore_events
from provisioner.station.presence import Connector

if TYPE_CHECKING:
    from provisioner.station.runner import StationRunner

STATION_PASSPHRASE_ENV = "PROVISIONER_STATION_PASSPHRASE"  # noqa: S105 (a variable name)
ENROL_PASSPHRASE_ENV = "PROVISIONER_ENROL_PASSPHRASE"  # noqa: S105 (a variable name)
PIN_ENV = "PROVISIONER_PIN"
DEFAULT_DATA_DIR = Path("station-data")
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C

@contextmanager
def unlocked_station(data_dir: Path, passphrase_file: Path | None) -> Iterator[StationRunner]:
    """Unlock the station in ``data_dir`` and close it afterwards; errors become click errors."""
    from provisioner.station.token_seal import token_config
    from provisioner.station.unlock import open_station

    try:
        on_token = token_config(data_dir) is not None
    except ProvisionerError as exc:
        raise click.ClickException(str(exc)) from exc
    passphrase = (read_secret(TOKEN_PIN_ENV, passphrase_file, "Token user PIN") if on_token else
                  read_secret(STATION_PASSPHRASE_ENV, passphrase_file, "Station passphrase"))
    try:
        runner = open_station(data_dir, passphrase)
    except ProvisionerError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield runner
    except ProvisionerError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        runner.close()


def _data_dir_option(func: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--data-dir", type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_DATA_DIR, show_default=True, help="Station data directory.",
    )(func)


def _passphrase_file_option(func: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--passphrase-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help=f"Read the station passphrase from a file (else ${STATION_PASSPHRASE_ENV}, "
             "else a prompt).",
    )(func)


def board_connectors(ports: tuple[str, ...], probes: tuple[str, ...]) -> dict[str, Connector]:
    """Return a connector per serial port and per probe unique ID.

    A connector takes the profile: the runner passes the order's (or, on recovery, the
    attempt's), so no local setting can make a board be programmed for another order's chip.
    """
    connectors: dict[str, Connector] = {}
    if ports:
        from provisioner.flash.serial_rom.backend import SerialRomBackend

        for port in ports:
            connectors[port] = partial(SerialRomBackend, port)
    if probes:
        from provisioner.flash.swd import SwdBackend

        for probe in probes:
            connectors[probe] = partial(SwdBackend, probe)
    return connectors


@click.group(invoke_without_command=True)
@_data_dir_option
@_passphrase_file_option
@click.option("--port", "ports", multiple=True, help="Serial port of a board (repeatable).")
@click.option("--probe", "probes", multiple=True, help="Debug probe unique ID (repeatable).")
@click.pass_context
def station_group(ctx: click.Context, data_dir: Path, passphrase_file: Path | None,
                  ports: tuple[str, ...], probes: tuple[str, ...]) -> None:
    """The bench station; without a subcommand, start the operator UI.

    Boards are programmed with the hardware profile of the order being produced.
    """
    disable_core_dumps()
    if ctx.invoked_subcommand is not None:
        return
    from provisioner.station.ui.app import run_ui

    with unlocked_station(data_dir, passphrase_file) as runner:
        code = run_ui(runner, board_connectors(ports, probes))
    ctx.exit(code)


@station_group.command("enroll")
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@_data_dir_option
@_passphrase_file_option
@click.option("--one-time-passphrase-file", type=click.Path(dir_okay=False, exists=True,
              path_type=Path), help=f"Bundle passphrase file (else ${ENROL_PASSPHRASE_ENV}).")
@click.option("--pkcs11-module", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Seal the station secrets on this PKCS#11 module's token instead of under "
                   f"a passphrase (PIN: --passphrase-file, else ${TOKEN_PIN_ENV}, else a prompt).")
@click.option("--token-label", default=None, help="Label of the station's token.")
def enroll_command(bundle: Path, data_dir: Path, passphrase_file: Path | None,
                   one_time_passphrase_file: Path | None, pkcs11_module: Path | None,
                   token_label: str | None) -> None:
    """Enrol this station from BUNDLE, consuming its one-time enrolment at the site.

    Asks the one-time passphrase (checked at once), then a new station passphrase; the site
    confirms over mTLS, then the bundle file is overwritten and removed.
    """
    from provisioner.station import enrolment
    from provisioner.station.token_seal import StationToken

    if (pkcs11_module is None) != (token_label is None):
        raise click.UsageError("--pkcs11-module and --token-label go together")
    token = (StationToken(str(pkcs11_module.absolute()), token_label)
             if pkcs11_module is not None and token_label is not None else None)
    try:
        enrolment.check_not_enrolled(data_dir)
        one_time = read_secret(ENROL_PASSPHRASE_ENV, one_time_passphrase_file,
                               "One-time bundle passphrase")
        opened_bundle = enrolment.open_enrolment_bundle(bundle, one_time)
        try:
            new = (read_secret(TOKEN_PIN_ENV, passphrase_file, "Token user PIN") if token else
                   read_secret(STATION_PASSPHRASE_ENV, passphrase_file,
                               "New station passphrase", confirm=True))
        except BaseException:
            opened_bundle.wipe()
            raise
        config = enrolment.enroll_bundle(opened_bundle, new, data_dir, token=token)
    except SiteUnreachable as exc:
        raise click.ClickException(
            f"{exc}; run the same command again to finish enrolling (it resumes the same "
            "confirmation)"
        ) from exc
    except ProvisionerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"enrolled station {config.station_id} for {config.site_url} in {data_dir}")
    try:
        enrolment.destroy_bundle(bundle)
    except OSError as exc:
        click.echo(f"warning: could not remove the used bundle {bundle} ({exc.strerror}); "
                   "destroy it by hand", err=True)
    else:
        click.echo(f"bundle {bundle} overwritten and removed (it cannot be used again)")


@station_group.command("status")
@_data_dir_option
@_passphrase_file_option
def status_command(data_dir: Path, passphrase_file: Path | None) -> None:
    """Show the station id, its site and the next DRBG index."""
    from provisioner.station.config import StationConfig, StationPaths

    try:
        config = StationConfig.load(StationPaths(data_dir).config)
    except ProvisionerError as exc:
        raise click.ClickException(str(exc)) from exc
    with unlocked_station(data_dir, passphrase_file) as runner:
        click.echo(f"station_id: {config.station_id}")
        click.echo(f"site: {config.site_url}")
        click.echo(f"next drbg_index: {runner.keystore.next_index}")
        click.echo(f"open attempts: {len(runner.journal.open_attempts())}")


@station_group.command("run")
@_data_dir_option
@_passphrase_file_option
@click.option("--order", "order_id", required=True, help="Production order id.")
@click.option("--count", type=click.IntRange(min=1), required=True, help="Boards to provision.")
@click.option("--port", "ports", multiple=True, help="Serial port of a board (repeatable).")
@click.option("--probe", "probes", multiple=True, help="Debug probe unique ID (repeatable).")
@click.option("--operator", "operator_id", required=True, help="Operator id.")
@click.option("--pin-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=f"Operator PIN file (else ${PIN_ENV}, else a prompt).")
def run_command(data_dir: Path, passphrase_file: Path | None, order_id: str, count: int,
                ports: tuple[str, ...], probes: tuple[str, ...], operator_id: str,
                pin_file: Path | None) -> None:
    """Provision COUNT boards headless; one line per board; exit 1 if any failed.

    After each board the station waits for the next one on that port/probe (a chip with
    another UID): swap boards when it says "insert next board". Ctrl-C stops after the boards
    in flight (exit status 130).
    """
    from provisioner.station.headless import run_headless

    if not ports and not probes:
        raise click.UsageError("give at least one --port or --probe")
    with unlocked_station(data_dir, passphrase_file) as runner:
        runner.sign_in(operator_id, read_secret(PIN_ENV, pin_file, "Operator PIN"))
        order = next((o for o in runner.list_orders() if o.order_id == order_id), None)
        if order is None:
            raise click.ClickException(f"order {order_id} is not open for this station")
        summary = run_headless(runner, order_id, board_connectors(ports, probes), count,
                               out=click.echo)
    if summary.interrupted:
        sys.exit(INTERRUPTED_EXIT)
    if summary.failed:
        sys.exit(1)


@station_group.command("recover")
@_data_dir_option
@_passphrase_file_option
@click.option("--port", "ports", multiple=True, help="Serial port of a board (repeatable).")
@click.option("--probe", "probes", multiple=True, help="Debug probe unique ID (repeatable).")
@click.option("--operator", "operator_id", required=True, help="Operator id.")
@click.option("--pin-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=f"Operator PIN file (else ${PIN_ENV}, else a prompt).")
def recover_command(data_dir: Path, passphrase_file: Path | None, ports: tuple[str, ...],
                    probes: tuple[str, ...], operator_id: str,
                    pin_file: Path | None) -> None:
    """Settle attempts a crash left open (re-verify attached boards, report the rest)."""
    from provisioner.station.headless import format_result

    with unlocked_station(data_dir, passphrase_file) as runner:
        runner.sign_in(operator_id, read_secret(PIN_ENV, pin_file, "Operator PIN"))
        results = runner.recover(board_connectors(ports, probes), ignore_events)
        for result in results:
            click.echo(format_result(result))
        still_open = len(runner.journal.open_attempts())
    click.echo(f"recovered {len(results)} attempt(s); {still_open} still open")
    if still_open:
        sys.exit(1)
