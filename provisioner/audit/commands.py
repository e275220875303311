"""`provisioner audit` commands: verify an export offline, render a production report."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click

from provisioner.audit.chain import AuditEntry
from provisioner.audit.checkpoint import Checkpoint, checkpoint_from_json, is_signed
from provisioner.audit.report import Filter, ProductionReport, build_report
from provisioner.audit.report_render import (
    Provenance,
    render_csv,
    render_html,
    render_json,
    render_text,
)
from provisioner.audit.verify import VerifySummary, last_link, read_export, verify_export
from provisioner.crypto.signing import VerifyKey
from provisioner.errors import AuditError, ChainBroken, CryptoError

_KIND_WORDS = {
    "changed": "was changed after signing",
    "bad_signature": "is not signed by the manufacturer key",
    "deleted": "is missing",
    "reordered": "is out of order",
    "bad_link": "does not link to the entry before it",
    "truncated": "and every entry after it are missing (the signed head names a longer chain)",
    "beyond_head": "lies past the signed head",
    "head_mismatch": "is not the entry the signed head names",
    "head_forged": "is named by a head that is not signed by the manufacturer key",
    "bad_checkpoint": "is named by a checkpoint that is not signed by the manufacturer key",
    "not_continuation": "differs from the owner's checkpoint: not a continuation",
}
_DAY = click.DateTime(formats=["%Y-%m-%d"])
_OUT = click.Path(dir_okay=False, path_type=Path)
_EXPORT = click.Path(exists=True, dir_okay=False, path_type=Path)


def _load_key(pem_path: Path | None) -> VerifyKey | None:
    if pem_path is None:
        return None
    try:
        return VerifyKey.from_pem(pem_path.read_bytes())
    except (CryptoError, ValueError) as exc:
        message = f"{pem_path} is not an Ed25519 public key"
        raise click.BadParameter(message, param_hint="--key") from exc


def _continues(previous: Path | None, checkpoint: Path | None, key: VerifyKey | None,
               key_id: str | None) -> Checkpoint | None:
    """The owner's anchor: an older export's last entry, or a checkpoint file."""
    if previous is not None:
        return last_link(verify_export(previous, expected_key=key, expected_key_id=key_id))
    if checkpoint is None:
        return None
    try:
        obj = json.loads(checkpoint.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditError(f"{checkpoint}: not a readable checkpoint file: {exc}") from exc
    found = checkpoint_from_json(obj, where=str(checkpoint))
    pinned = key.key_id if key is not None else key_id
    if found.key_id != pinned or (key is not None and not is_signed(found, key)):
        raise AuditError(f"{checkpoint}: checkpoint is not signed by the pinned key {pinned}")
    return found


def _verified(
    export: Path, key_path: Path | None, key_id: str | None, *, every_signature: bool = False,
    previous: Path | None = None, checkpoint: Path | None = None,
) -> tuple[VerifySummary, list[AuditEntry]]:
    try:
        key = _load_key(key_path)
        anchor = _continues(previous, checkpoint, key, key_id)
        return read_export(export, expected_key=key, expected_key_id=key_id,
                           every_signature=every_signature, continues=anchor)
    except ChainBroken as exc:
        words = _KIND_WORDS.get(exc.kind, exc.kind)
        click.echo(f"FAILED: {export}: entry seq {exc.seq} {words} ({exc.kind})", err=True)
        sys.exit(1)
    except AuditError as exc:
        click.echo(f"FAILED: {exc}", err=True)
        sys.exit(1)


def emit_report(report: ProductionReport, provenance: Provenance, *, title: str,
                html_out: Path | None, csv_out: Path | None, json_out: Path | None) -> None:
    """Print the report's tables and write the files asked for (HTML page, CSV, JSON)."""
    click.echo(render_text(report, provenance))
    outputs: tuple[tuple[Path | None, Callable[[], str]], ...] = (
        (html_out, lambda: render_html(report, provenance, title=title)),
        (csv_out, lambda: render_csv(report)), (json_out, lambda: render_json(report)))
    for path, render in outputs:
        if path is not None:
            try:
                path.write_text(render(), encoding="utf-8")
            except OSError as exc:
                raise click.ClickException(f"{path}: cannot write: {exc.strerror}") from exc
            click.echo(f"written {path}")


def day_text(value: datetime | None) -> str | None:
    """A click DateTime option as a UTC day string."""
    return None if value is None else value.strftime("%Y-%m-%d")


@click.group("audit")
def audit_group() -> None:
    """Verify audit exports and report production from them."""


_key_option = click.option(
    "--key", "key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM public key of the manufacturer to pin.")
_key_id_option = click.option(
    "--key-id", "key_id", help="Manufacturer key id to pin (16 hex digits, from `site init`).")


@audit_group.command("verify")
@click.argument("export", type=_EXPORT)
@_key_option
@_key_id_option
@click.option("--every-signature", is_flag=True, help="Check each entry's own signature too.")
@click.option("--continues", "previous", type=_EXPORT,
              help="An older export this one must continue (its last entry must be here).")
@click.option("--checkpoint", type=_EXPORT, help="A checkpoint file (`site audit checkpoint`).")
def verify_command(export: Path, key: Path | None, key_id: str | None, every_signature: bool,
                   previous: Path | None, checkpoint: Path | None) -> None:
    """Check the chain and signatures of EXPORT offline; name the first bad entry."""
    summary, _ = _verified(export, key, key_id, every_signature=every_signature,
                           previous=previous, checkpoint=checkpoint)
    click.echo(f"OK: {summary.count} entries from site {summary.site_name!r}")
    click.echo(f"seq {summary.first_seq}..{summary.last_seq}, "
               f"{summary.first_time or '-'} .. {summary.last_time or '-'}"
               + (f" (a range; the site's head was seq {summary.site_head.seq})"
                  if summary.is_range else " (the whole chain, up to the signed head)"))
    click.echo(f"head hash {summary.head_hash}; {summary.checkpoints} signed checkpoints")
    if summary.continues is not None:
        click.echo(f"continues the owner's checkpoint at seq {summary.continues}")
    if summary.key_pinned:
        click.echo(f"signed by pinned manufacturer key {summary.key_id}")
    else:
        click.echo(f"signed by key {summary.key_id} found inside the export: this proves internal "
                   "consistency only; pass --key or --key-id to prove origin")


@audit_group.command("report")
@click.argument("export", type=_EXPORT)
@_key_option
@_key_id_option
@click.option("--order", "order_id", default=None, help="Only this order.")
@click.option("--from", "from_day", type=_DAY, default=None, help="First UTC day (YYYY-MM-DD).")
@click.option("--to", "to_day", type=_DAY, default=None, help="Last UTC day (YYYY-MM-DD).")
@click.option("--html", "html_out", type=_OUT, help="Write a self-contained HTML page.")
@click.option("--csv", "csv_out", type=_OUT, help="Write the device list as CSV.")
@click.option("--json", "json_out", type=_OUT, help="Write the device list as JSON.")
def report_command(export: Path, key: Path | None, key_id: str | None, order_id: str | None,
                   from_day: datetime | None, to_day: datetime | None, html_out: Path | None,
                   csv_out: Path | None, json_out: Path | None) -> None:
    """Verify EXPORT against the pinned key, then report production from its entries.

    The key inside the export is never trusted: pass --key-id (or --key).
    """
    if key is None and key_id is None:
        raise click.UsageError("pass --key-id ID (or --key PEM): the key inside an export "
                               "proves nothing about who signed it")
    summary, entries = _verified(export, key, key_id)
    report = build_report(entries, Filter(order_id, day_text(from_day), day_text(to_day)))
    span = "range" if summary.is_range else "whole chain"
    provenance = Provenance(
        f"export {export.name} of site {summary.site_name!r}",
        f"verified offline ({span}, {summary.checkpoints} checkpoints)", summary.key_id,
        summary.last_seq, summary.head_hash)
    emit_report(report, provenance, title=f"Production report — {summary.site_name}",
                html_out=html_out, csv_out=csv_out, json_out=json_out)
