"""`provisioner site release …` and `site device …`: releases and device entitlement."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from provisioner.errors import InvalidRequest
from provisioner.site.admin_cli import _site, _translated
from provisioner.site.updates import devices, releases


@click.group("release")
def release_group() -> None:
    """Field-update releases (images signed by the manufacturer key, wrapped at rest)."""


@release_group.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--product", required=True)
@click.option("--version", required=True, help="MAJOR.MINOR.PATCH of this release.")
@click.option("--requires", default=None, help="Version a device must run before this one.")
@click.option("--min-version", default=None,
              help="Anti-rollback floor: after installing, the device refuses anything older.")
@_translated
def release_add(file: Path, product: str, version: str, requires: str | None,
                min_version: str | None) -> None:
    """Store an update image (raw .bin, Intel HEX or S-record) for a product."""
    with _site() as ctx:
        info = releases.add_release(ctx, file, product=product, version=version,
                                    requires=requires, min_version=min_version)
    click.echo(f"{info.release_id}\t{info.product} {info.version}\t{info.image_size} bytes\t"
               f"sha512 {info.image_sha512[:32]}…")


@release_group.command("list")
@click.option("--product", default=None)
@_translated
def release_list(product: str | None) -> None:
    """List releases by product and version."""
    with _site() as ctx:
        for info in releases.list_releases(ctx, product):
            click.echo(f"{info.release_id}\t{info.product}\t{info.version}\t"
                       f"requires {info.requires_version or '-'}\t"
                       f"min {info.min_version or '-'}\t{info.image_size} bytes")


@release_group.command("public-key")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the PEM here (default: stdout).")
@_translated
def release_public_key(out: Path | None) -> None:
    """Print the manufacturer public key (PEM) that device bootloaders verify manifests with."""
    with _site() as ctx:
        pem = ctx.signer.verify_key.to_pem()
    if out is None:
        click.echo(pem.decode("ascii"), nl=False)
    else:
        out.write_bytes(pem)


@click.group("device")
def device_group() -> None:
    """Devices: lookup by device ID or chip UID, update entitlement."""


def _line(info: devices.DeviceInfo) -> str:
    return (f"{info.device_id}\t{info.chip_uid}\t{info.order_id}\t{info.product}\t"
            f"{info.status}\t{info.entitlement}")


@device_group.command("list")
@click.option("--order-id", default=None)
@_translated
def device_list(order_id: str | None) -> None:
    """List devices: ID, chip UID, order, product, status, entitlement."""
    with _site() as ctx:
        for info in devices.list_devices(ctx, order_id=order_id):
            click.echo(_line(info))


@device_group.command("show")
@click.argument("device")
@_translated
def device_show(device: str) -> None:
    """Show one device (DEVICE: device ID, or chip UID in hex) with its deliveries."""
    with _site() as ctx:
        info = devices.show_device(ctx, device)
    click.echo(_line(info))
    for d in info.deliveries:
        click.echo(f"  delivery {d.delivery_id}\t{d.version}\t{d.delivered_at.isoformat()}\t"
                   f"from {d.source_address}\t{d.status}"
                   + (f" ({d.reason})" if d.reason and d.reason != "none" else ""))


def _until(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidRequest(f"--until {text!r} is not an ISO 8601 date or time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@device_group.command("entitle")
@click.argument("device")
@click.option("--until", default=None, help="End of the entitlement (ISO 8601; UTC if no zone).")
@_translated
def device_entitle(device: str, until: str | None) -> None:
    """Entitle a device to field updates (again), optionally until a date."""
    with _site() as ctx:
        click.echo(_line(devices.entitle(ctx, device, until=_until(until))))


@device_group.command("revoke")
@click.argument("device")
@_translated
def device_revoke(device: str) -> None:
    """Revoke a device's entitlement: its update requests are refused `not_entitled`."""
    with _site() as ctx:
        click.echo(_line(devices.revoke(ctx, device)))
