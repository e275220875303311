"""`provisioner site …`: a thin click layer over the admin functions."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from hex_generator import HexError
from hw_profiles import ProfileValidationError
from provisioner.errors import ProvisionerError
from provisioner.prompts import read_secret
from provisioner.site import admin, catalogue
from provisioner.site.context import SiteContext, open_site
from provisioner.site.keys_cli import keys_group, site_pin_prompt, token_config, token_options
from provisioner.site.sitedir import DEFAULT_SITE_DIR

P = ParamSpec("P")
R = TypeVar("R")


def _translated(func: Callable[P, R]) -> Callable[P, R]:
    """Turn provisioner, hex and profile errors into one-line CLI errors (exit status 1)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (ProvisionerError, HexError, ProfileValidationError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def _site_dir() -> Path:
    value = click.get_current_context().find_root().meta.get("site_dir", DEFAULT_SITE_DIR)
    return Path(value)


@contextmanager
def _site() -> Iterator[SiteContext]:
    ctx = open_site(_site_dir(), pin_prompt=site_pin_prompt())
    try:
        yield ctx
    finally:
        ctx.close()


@click.group("site")
@click.option("--site-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_SITE_DIR, show_default=True, help="Site directory.")
def site_group(site_dir: Path) -> None:
    """Run the protected site: keys, stations, operators, firmware, orders, audit, server."""
    click.get_current_context().find_root().meta["site_dir"] = site_dir


@site_group.command("init")
@click.option("--name", "site_name", default="site", show_default=True, help="Site name.")
@click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in the dir).")
@click.option("--host", "hosts", multiple=True, help="Extra host name/IP for the TLS cert.")
@token_options
@_translated
def init_command(site_name: str, db_url: str | None, hosts: tuple[str, ...],
                 pkcs11_module: Path | None, token_label: str | None,
                 pin_file: Path | None) -> None:
    """Create the database, master key, manufacturer signing key, site CA and TLS certificate.

    With --pkcs11-module the three keys are created (or adopted) on the token instead.
    """
    chosen = token_config(pkcs11_module, token_label, pin_file)
    token, pin = chosen if chosen else (None, None)
    result = admin.init_site(_site_dir(), site_name=site_name, db_url=db_url, hosts=hosts,
                             token=token, pin=pin)
    click.echo(f"site CA              sha256 {result.ca_fingerprint}")
    click.echo(f"TLS server cert      sha256 {result.server_fingerprint}")
    click.echo(f"manufacturer key id  {result.signing_key_id}")


site_group.add_command(keys_group)


@site_group.group("station")
def station_group() -> None:
    """Enrol and manage stations."""


@station_group.command("add")
@click.argument("station_id")
@click.option("--url", "site_url", default="https://localhost:8443", show_default=True,
              help="Site URL written into the bundle.")
@click.option("--bundle", "bundle_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Where to write the sealed bundle.")
@_translated
def station_add(station_id: str, site_url: str, bundle_path: Path | None) -> None:
    """Enrol a station and write its sealed enrolment bundle; prints the passphrase once."""
    with _site() as ctx:
        enrolment = admin.add_station(ctx, _site_dir(), station_id, site_url,
                                      bundle_path=bundle_path)
    click.echo(f"station {station_id}: certificate sha256 {enrolment.cert_fingerprint}")
    click.echo(f"bundle: {enrolment.bundle_path}")
    click.echo(f"one-time passphrase (read it to the operator, it is not stored): "
               f"{enrolment.passphrase}")


def _status_command(name: str, status: str) -> None:
    @station_group.command(name, help=f"Mark a station {status}.")
    @click.argument("station_id")
    @_translated
    def command(station_id: str) -> None:
        with _site() as ctx:
            admin.set_station_status(ctx, station_id, status)
        click.echo(f"station {station_id} {status}")


_status_command("suspend", "suspended")
_status_command("revoke", "revoked")
_status_command("activate", "active")


@site_group.group("operator")
def operator_group() -> None:
    """Manage bench operators."""


PIN_ENV = "PROVISIONER_PIN"


def _pin_file_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--pin-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help=f"Read the operator's new PIN from a file (else ${PIN_ENV}, else a hidden prompt "
             "asked twice).",
    )(func)


def _new_pin(pin_file: Path | None) -> str:
    return read_secret(PIN_ENV, pin_file, "New operator PIN", confirm=True)


@operator_group.command("add")
@click.argument("operator_id")
@_pin_file_option
@_translated
def operator_add(operator_id: str, pin_file: Path | None) -> None:
    """Create an operator (PIN stored as a scrypt hash)."""
    pin = _new_pin(pin_file)
    with _site() as ctx:
        admin.add_operator(ctx, operator_id, pin)
    click.echo(f"operator {operator_id} added")


@operator_group.command("reset")
@click.argument("operator_id")
@_pin_file_option
@_translated
def operator_reset(operator_id: str, pin_file: Path | None) -> None:
    """Set a new PIN and clear the lockout."""
    pin = _new_pin(pin_file)
    with _site() as ctx:
        admin.reset_operator(ctx, operator_id, pin)
    click.echo(f"operator {operator_id} reset")


@operator_group.command("list")
@_translated
def operator_list() -> None:
    """List operators."""
    with _site() as ctx:
        for operator_id, failures, locked_until in admin.list_operators(ctx):
            locked = f"locked until {locked_until.isoformat()}" if locked_until else "ok"
            click.echo(f"{operator_id}\tfailures={failures}\t{locked}")


@site_group.group("firmware")
def firmware_group() -> None:
    """Manage the firmware archive."""


@firmware_group.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice([k.value for k in catalogue.FirmwareKind]),
              required=True)
@click.option("--product", required=True)
@click.option("--version", required=True)
@click.option("--profile", default=None, help="Hardware profile (required for templates).")
@_translated
def firmware_add(file: Path, kind: str, product: str, version: str, profile: str | None) -> None:
    """Store a firmware file with its digest and Ed25519 signature."""
    with _site() as ctx:
        info = catalogue.add_firmware(ctx, file, kind=catalogue.FirmwareKind(kind),
                                      product=product, version=version, profile=profile)
    click.echo(f"{info.firmware_id}\t{info.kind}\t{info.product} {info.version}\t"
               f"sha256 {info.sha256}")


@site_group.group("order")
def order_group() -> None:
    """Manage production orders."""


@order_group.command("create")
@click.option("--product", required=True)
@click.option("--profile", required=True)
@click.option("--quantity", type=click.IntRange(min=1), required=True)
@click.option("--bootloader", required=True, help="Bootloader template version.")
@click.option("--application", default=None, help="Application version.")
@click.option("--stations", default="",
              help="Comma-separated stations allowed to serve it "
                   "(default: every station enrolled now; add more with `order add-station`).")
@click.option("--order-id", default=None)
@_translated
def order_create(product: str, profile: str, quantity: int, bootloader: str,
                 application: str | None, stations: str, order_id: str | None) -> None:
    """Create an open production order."""
    allowed = tuple(s.strip() for s in stations.split(",") if s.strip())
    with _site() as ctx:
        created = catalogue.create_order(
            ctx, product=product, profile=profile, quantity=quantity, bootloader=bootloader,
            application=application, stations=allowed, order_id=order_id,
        )
    click.echo(created)


@order_group.command("add-station")
@click.argument("order_id")
@click.argument("station_id")
@_translated
def order_add_station(order_id: str, station_id: str) -> None:
    """Allow STATION_ID to serve ORDER_ID (e.g. a station enrolled after the order)."""
    with _site() as ctx:
        catalogue.add_station_to_order(ctx, order_id, station_id)
    click.echo(f"station {station_id} may now serve order {order_id}")


@order_group.command("close")
@click.argument("order_id")
@_translated
def order_close(order_id: str) -> None:
    """Close an order."""
    with _site() as ctx:
        catalogue.close_order(ctx, order_id)
    click.echo(f"order {order_id} closed")


@site_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8443, show_default=True)
@click.option("--update-port", type=int, default=None,
              help="Also serve the field-update listener on this port (server TLS, no client "
                   "certificate; devices and technicians have none), e.g. 8444.")
@click.option("--update-rate", type=click.FloatRange(min=0.1), default=20.0, show_default=True,
              help="Update requests per second allowed from one source address (burst 2x).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--db", "db_url", default=None, help="Override the database URL.")
@_translated
def serve_command(host: str, port: int, update_port: int | None, update_rate: float,
                  workers: int, db_url: str | None) -> None:
    """Serve the station API over TLS 1.2+ (client certificates verified against the site CA)
    and the field-update listener on its own port (no client certificate)."""
    from provisioner.site.server import serve

    serve(_site_dir(), host=host, port=port, update_port=update_port,
          workers=workers, db_url=db_url, update_rate_per_s=update_rate,
          pin_prompt=site_pin_prompt())


def _register_update_commands() -> None:
    from provisioner.site.update_cli import device_group, release_group

    site_group.add_command(release_group)
    site_group.add_command(device_group)


_register_update_commands()

from provisioner.site import report_cli  # noqa: E402,F401  (adds its commands to the groups)
