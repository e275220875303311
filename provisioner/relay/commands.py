"""`provisioner device update`: the technician relay over a serial port."""

from __future__ import annotations

from pathlib import Path

import click
import serial

from provisioner.errors import ProvisionerError, Refused
from provisioner.relay.carrier import carry_update
from provisioner.relay.site_updates import UpdateSite
from provisioner.update.link import LinkError

LINK_TIMEOUT_S = 60.0


class _SerialStream:
    """A pyserial port as a link stream; a vanished device reads as a closed link."""

    def __init__(self, port: serial.Serial) -> None:
        self._port = port

    def read(self, size: int) -> bytes:
        try:
            return bytes(self._port.read(size))
        except serial.SerialException:
            return b""

    def write(self, data: bytes) -> int | None:
        try:
            return self._port.write(data)
        except serial.SerialException as exc:
            raise LinkError(f"device link: {exc}") from exc


@click.group("device")
def device_group() -> None:
    """Field devices: carry an update from the site to a device (technician relay)."""


@device_group.command("update")
@click.option("--port", required=True, help="Serial port of the device (a pty for a virtual one).")
@click.option("--site", "site_url", required=True, help="Update listener URL, https://HOST:8444.")
@click.option("--ca", "ca_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Site CA certificate (verifies the site's TLS certificate).")
@click.option("--baud", type=int, default=115200, show_default=True)
def update_command(port: str, site_url: str, ca_path: Path, baud: int) -> None:
    """Carry the device's signed request to the site and the sealed package back.

    Holds no key and writes nothing: the package is encrypted for the device.
    """
    site = UpdateSite(site_url, ca_path)
    try:
        with serial.Serial(port, baud, timeout=LINK_TIMEOUT_S) as link:
            session = carry_update(_SerialStream(link), site, progress=click.echo)
    except Refused as exc:
        raise click.ClickException(f"site refused: {exc.code}: {exc.detail}") from exc
    except (ProvisionerError, serial.SerialException) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        site.close()
    if session.result is not None and session.result.outcome.value != "installed":
        raise click.ClickException(f"device kept its previous image: {session.result.reason.name}")
