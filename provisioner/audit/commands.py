"""`provisioner audit` commands: verify an export offline, render a production report."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provisioner.audit.chain import AuditEntry
from provisioner.audit.report import build_report, render_html, render_text
from provisioner.audit.verify import VerifySummary, read_export
from provisioner.crypto.signing import VerifyKey
from provisioner.errors import AuditError, ChainBroken, CryptoError

_KIND_WORDS = {
    "changed": "was changed after signing",
    "bad_signature": "is not signed by the manufacturer key",
    "deleted": "is missing",
    "reordered": "is out of order",
    "bad_link": "does not link to the entry before it",
}
_EXPORT = click.Path(exists=True, dir_okay=False, path_type=Path)


def _load_key(pem_path: Path | None) -> VerifyKey | None:
    if pem_path is None:
        return None
    try:
        return VerifyKey.from_pem(pem_path.read_bytes())
    except (CryptoError, ValueError) as exc:
        message = f"{pem_path} is not an Ed25519 public key"
        raise click.BadParameter(message, param_hint="--key") from exc


def _verified(
    export: Path, key: Path | None, key_id: str | None
) -> tuple[VerifySummary, list[AuditEntry]]:
    try:
        return read_export(export, expected_key=_load_key(key), expected_key_id=key_id)
    except ChainBroken as exc:
        words = _KIND_WORDS.get(exc.kind, exc.kind)
        click.echo(f"FAILED: {export}: entry seq {exc.seq} {words} ({exc.kind})", err=True)
        sys.exit(1)
    except AuditError as exc:
        click.echo(f"FAILED: {exc}", err=True)
        sys.exit(1)


@click.group("audit")
def audit_group() -> None:
    """Verify audit exports and report production from them."""


@audit_group.command("verify")
@click.argument("export", type=_EXPORT)
@click.option("--key", "key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM public key of the manufacturer to pin (else the export's own key).")
@click.option("--key-id", "key_id", help="Expected manufacturer key id (16 hex digits).")
def verify_command(export: Path, key: Path | None, key_id: str | None) -> None:
    """Check the chain and signatures of EXPORT offline; name the first bad entry."""
    summary, _ = _verified(export, key, key_id)
    click.echo(f"OK: {summary.count} entries from site {summary.site_name!r}")
    click.echo(f"seq {summary.first_seq}..{summary.last_seq}, "
               f"{summary.first_time or '-'} .. {summary.last_time or '-'}")
    click.echo(f"head hash {summary.head_hash}")
    if summary.key_pinned:
        click.echo(f"signed by pinned manufacturer key {summary.key_id}")
    else:
        click.echo(f"signed by key {summary.key_id} found inside the export: this proves internal "
                   "consistency only; pass --key or --key-id to prove origin")


@audit_group.command("report")
@click.argument("export", type=_EXPORT)
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML page with charts to this file.")
@click.option("--key", "key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM public key of the manufacturer to pin.")
def report_command(export: Path, html_out: Path | None, key: Path | None) -> None:
    """Verify EXPORT, then print production counts per order, station and day."""
    summary, entries = _verified(export, key, None)
    report = build_report(entries)
    click.echo(render_text(report))
    if html_out is not None:
        html_out.write_text(render_html(report, title=f"Production report — {summary.site_name}"),
                            encoding="utf-8")
        click.echo(f"HTML report written to {html_out}")
