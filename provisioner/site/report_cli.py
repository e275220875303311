"""`provisioner site report|reconcile|audit …` and the listings (orders, firmware, stations).

Its commands join admin_cli's groups when admin_cli imports this module (at its end).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from provisioner.audit.commands import day_text, emit_report
from provisioner.audit.report import Filter
from provisioner.site import listing, reconcile
from provisioner.site.admin_cli import (
    _site,
    _translated,
    firmware_group,
    order_group,
    site_group,
    station_group,
)
from provisioner.site.audit_trail import export_site_audit, verify_site_chain, write_checkpoint
from provisioner.site.production import site_report

_OUT = click.Path(dir_okay=False, path_type=Path)
_DAY = click.DateTime(formats=["%Y-%m-%d"])


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@site_group.command("report")
@click.option("--order", "order_id", default=None, help="Only this order.")
@click.option("--from", "from_day", type=_DAY, default=None, help="First UTC day (YYYY-MM-DD).")
@click.option("--to", "to_day", type=_DAY, default=None, help="Last UTC day (YYYY-MM-DD).")
@click.option("--verify", is_flag=True, help="Verify the whole chain first.")
@click.option("--html", "html_out", type=_OUT, help="Write a self-contained HTML page.")
@click.option("--csv", "csv_out", type=_OUT, help="Write the device list as CSV.")
@click.option("--json", "json_out", type=_OUT, help="Write the device list as JSON.")
@_translated
def report_command(order_id: str | None, from_day: datetime | None, to_day: datetime | None,
                   verify: bool, html_out: Path | None, csv_out: Path | None,
                   json_out: Path | None) -> None:
    """Production per order, station, operator and day from the live database."""
    where = Filter(order_id, day_text(from_day), day_text(to_day))
    with _site() as ctx:
        built = site_report(ctx, where, verify=verify)
    emit_report(built.report, built.provenance, html_out=html_out, csv_out=csv_out,
                json_out=json_out, title=f"Production report — {ctx.site_name}")

@site_group.command("reconcile")
@click.option("--order", "order_id", default=None, help="Only this order.")
@click.option("--release-expired", is_flag=True,
              help="Release expired reservations (audited) so the order's count is right.")
@_translated
def reconcile_command(order_id: str | None, release_expired: bool) -> None:
    """List reserved-but-never-completed, suspect and quarantined devices."""
    with _site() as ctx:
        items = reconcile.list_open(ctx, order_id=order_id)
        released = (reconcile.release_expired(ctx, order_id=order_id)
                    if release_expired else [])
    rows = [[str(i.device_id), i.chip_uid, i.order_id, i.station_id, i.operator_id or "-",
             i.status + (" (expired)" if i.expired else ""), _age(i.age_s)] for i in items]
    if rows:
        _table(["device_id", "chip_uid", "order_id", "station_id", "operator_id", "status",
                "age"], rows)
    else:
        click.echo("nothing to reconcile")
    for item in released:
        click.echo(f"released device {item.device_id} (chip {item.chip_uid}, order "
                   f"{item.order_id}, station {item.station_id})")

@order_group.command("list")
@_translated
def order_list() -> None:
    """List orders: counts, firmware versions and allowed stations."""
    with _site() as ctx:
        views = listing.orders(ctx)
    _table(["order_id", "status", "product", "profile", "authorised", "produced",
            "reserved", "remaining", "bootloader", "application", "stations"],
           [[v.order_id, v.status, v.product, v.profile, str(v.authorised), str(v.produced),
             str(v.reserved), str(v.remaining), v.bootloader, v.application or "-",
             ",".join(v.stations)] for v in views])

@order_group.command("show")
@click.argument("order_id")
@_translated
def order_show(order_id: str) -> None:
    """Show one order."""
    with _site() as ctx:
        (view,) = listing.orders(ctx, order_id)
    for name in ("order_id", "status", "product", "profile", "authorised", "produced",
                 "reserved", "remaining", "bootloader", "application", "stations",
                 "created_at"):
        value = getattr(view, name)
        shown = ", ".join(value) if isinstance(value, tuple) else value
        click.echo(f"{name + ':':13} {shown if shown is not None else '-'}")

@firmware_group.command("list")
@_translated
def firmware_list() -> None:
    """List the firmware archive (digests and signing key; bytes stay wrapped)."""
    with _site() as ctx:
        rows = listing.firmware(ctx)
    _table(["firmware_id", "kind", "product", "version", "profile", "size_bytes", "sha256",
            "key_id"],
           [[r.firmware_id, r.kind, r.product, r.version, r.profile or "-",
             str(r.size_bytes), r.sha256, r.key_id] for r in rows])

@station_group.command("list")
@_translated
def station_list() -> None:
    """List stations with status, next DRBG index and when each was last seen."""
    with _site() as ctx:
        views = listing.stations(ctx)
    _table(["station_id", "status", "next_index", "last_seen", "cert_sha256"],
           [[v.station_id, v.status, str(v.next_index),
             v.last_seen.isoformat(timespec="seconds") if v.last_seen else "never",
             v.cert_fingerprint] for v in views])

@site_group.group("audit")
def audit() -> None:
    """Export, verify and checkpoint the audit chain."""

@audit.command("export")
@click.argument("path", type=_OUT)
@click.option("--from-seq", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--to-seq", type=click.IntRange(min=1), default=None,
              help="Last seq (default: the head).")
@_translated
def audit_export(path: Path, from_seq: int, to_seq: int | None) -> None:
    """Verify the chain, then write seq FROM..TO as a verifiable tar export."""
    with _site() as ctx:
        count = export_site_audit(ctx, path, first_seq=from_seq, last_seq=to_seq)
    click.echo(f"{count} entries exported to {path}")

@audit.command("verify")
@click.option("--every-signature", is_flag=True,
              help="Check each entry's own signature too (slower).")
@_translated
def audit_verify(every_signature: bool) -> None:
    """Verify the stored chain against its signed head and checkpoints."""
    with _site() as ctx:
        chain = verify_site_chain(ctx, every_signature=every_signature)
    click.echo(f"audit chain OK: {len(chain.entries)} entries, signed head seq "
               f"{chain.head.seq} {chain.head.hash}, {len(chain.checkpoints)} checkpoints")

@audit.command("checkpoint")
@click.argument("path", type=_OUT)
@_translated
def audit_checkpoint(path: Path) -> None:
    """Write the signed head to PATH for the owner to keep (proves later continuations)."""
    with _site() as ctx:
        head = write_checkpoint(ctx, path)
    click.echo(f"checkpoint seq {head.seq} {head.hash} written to {path}")


def _age(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
