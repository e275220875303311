"""Every kind of damage to a real site database (SQLite and PostgreSQL) and to an export is
caught, naming the first bad seq and the kind of damage; checkpoints prove continuations."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from site_fixtures import build_site, postgres_database
from sqlalchemy import text

from provisioner.audit.chain import AuditEntry, AuditEvent, build_entry, canonical_json
from provisioner.audit.checkpoint import CHECKPOINT_INTERVAL, sign_checkpoint
from provisioner.audit.commands import audit_group
from provisioner.audit.export import MANIFEST_MEMBER, SIGNATURE_MEMBER, build_manifest
from provisioner.audit.report import Filter
from provisioner.audit.verify import last_link, verify_export
from provisioner.crypto.signing import SigningKey
from provisioner.errors import ChainBroken
from provisioner.site import admin, audit_trail
from provisioner.site.context import SiteContext, open_site
from provisioner.site.db import repo
from provisioner.site.db.engine import transaction
from provisioner.site.production import site_report


def _grow(ctx: SiteContext, count: int) -> None:
    """Append ``count`` entries through the site's own audit path."""
    with transaction(ctx.factory) as session:
        for number in range(count):
            repo.append_audit(session, signer=ctx.signer, now=ctx.clock(), actor="site:test",
                              event=AuditEvent.operator_signed_in,
                              data={"operator_id": f"op-{number}", "station_id": "ST-1"})


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SiteContext]:
    if request.param == "postgresql":
        with postgres_database() as url:
            build_site(tmp_path / "site", db_url=url)
            ctx = open_site(tmp_path / "site")
            try:
                _grow(ctx, 30)
                yield ctx
            finally:
                ctx.close()
    else:
        build_site(tmp_path / "site")
        ctx = open_site(tmp_path / "site")
        try:
            _grow(ctx, 30)
            yield ctx
        finally:
            ctx.close()


def _sql(ctx: SiteContext, statement: str, **params: object) -> None:
    with ctx.factory() as session, session.begin():
        session.execute(text(statement), params)


def _count(ctx: SiteContext) -> int:
    return admin.verify_audit(ctx)


def _broken(ctx: SiteContext) -> tuple[int, str]:
    with pytest.raises(ChainBroken) as info:
        audit_trail.verify_site_chain(ctx)
    return info.value.seq, info.value.kind


def test_intact_chain_verifies_against_its_signed_head(site: SiteContext) -> None:
    chain = audit_trail.verify_site_chain(site, every_signature=True)
    assert chain.head.seq == len(chain.entries) == _count(site)


def _head_seq(site: SiteContext) -> int:
    with site.factory() as session:
        return repo.signed_head(session).seq


def test_edited_entry(site: SiteContext) -> None:
    seq = _head_seq(site) - 5
    _sql(site, "UPDATE audit_entries SET data = replace(data, 'ST-1', 'ST-9') WHERE seq = :s",
         s=seq)
    assert _broken(site) == (seq, "changed")


def test_deleted_middle_entry(site: SiteContext) -> None:
    _sql(site, "DELETE FROM audit_entries WHERE seq = 7")
    assert _broken(site) == (7, "deleted")


def test_deleted_tail_is_truncation(site: SiteContext, tmp_path: Path) -> None:
    head = _head_seq(site)
    _sql(site, "DELETE FROM audit_entries WHERE seq > :s", s=head - 3)
    assert _broken(site) == (head - 2, "truncated")
    with pytest.raises(ChainBroken, match="truncated"):
        admin.export_audit(site, tmp_path / "never.tar")
    assert not (tmp_path / "never.tar").exists()


def test_deleted_tail_with_the_head_moved_back(site: SiteContext) -> None:
    head = _head_seq(site)
    _sql(site, "DELETE FROM audit_entries WHERE seq > :s", s=head - 3)
    _sql(site, "UPDATE audit_head SET seq = :s, hash = (SELECT hash FROM audit_entries "
               "WHERE seq = :s)", s=head - 3)
    assert _broken(site) == (head - 3, "head_forged")


def test_truncated_table(site: SiteContext) -> None:
    _sql(site, "DELETE FROM audit_entries")
    assert _broken(site) == (1, "truncated")


def test_reordered_entries(site: SiteContext) -> None:
    _sql(site, "UPDATE audit_entries SET seq = -1 WHERE seq = 12")
    _sql(site, "UPDATE audit_entries SET seq = 12 WHERE seq = 13")
    _sql(site, "UPDATE audit_entries SET seq = 13 WHERE seq = -1")
    assert _broken(site) == (12, "reordered")


def test_resigned_with_another_key(site: SiteContext) -> None:
    other = SigningKey.generate()
    entries = audit_trail.read_chain(site).entries
    forged: list[AuditEntry] = entries[:8]
    for entry in entries[8:]:
        forged.append(build_entry(prev=forged[-1], time=site.clock(), actor=entry.actor,
                                  event=entry.event, data=entry.data, signer=other))
    for entry in forged[8:]:
        _sql(site, "UPDATE audit_entries SET time = :t, data = :d, prev_hash = :p, hash = :h, "
                   "key_id = :k, signature = :g WHERE seq = :s", t=entry.time,
             d=json.dumps(entry.data, sort_keys=True, separators=(",", ":")),
             p=entry.prev_hash, h=entry.hash, k=entry.key_id, g=entry.signature, s=entry.seq)
    head = sign_checkpoint(forged[-1].seq, forged[-1].hash, forged[-1].time, other)
    _sql(site, "UPDATE audit_head SET hash = :h, key_id = :k, signature = :g",
         h=head.hash, k=head.key_id, g=head.signature)
    assert _broken(site) == (9, "bad_signature")


def test_forged_checkpoint_is_named(tmp_path: Path) -> None:
    build_site(tmp_path / "site")
    ctx = open_site(tmp_path / "site")
    try:
        _grow(ctx, CHECKPOINT_INTERVAL + 5)
        chain = audit_trail.verify_site_chain(ctx)
        assert [cp.seq for cp in chain.checkpoints] == [CHECKPOINT_INTERVAL]
        _sql(ctx, "UPDATE audit_checkpoints SET signature = :g", g="00" * 64)
        assert _broken(ctx) == (CHECKPOINT_INTERVAL, "bad_checkpoint")
    finally:
        ctx.close()


# --- exports -----------------------------------------------------------------------------


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {info.name: archive.extractfile(info).read()  # type: ignore[union-attr]
                for info in archive.getmembers()}


def _rewrite(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))


def _lines(path: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    members = _members(path)
    lines = members["entries.jsonl"].splitlines()
    members["entries.jsonl"] = b"".join(line + b"\n" for line in change(lines))
    _rewrite(path, members)


@pytest.fixture
def exported(tmp_path: Path) -> Iterator[tuple[SiteContext, Path]]:
    build_site(tmp_path / "site")
    ctx = open_site(tmp_path / "site")
    try:
        _grow(ctx, 30)
        path = tmp_path / "audit.tar"
        admin.export_audit(ctx, path)
        yield ctx, path
    finally:
        ctx.close()


def _export_broken(ctx: SiteContext, path: Path) -> tuple[int, str]:
    with pytest.raises(ChainBroken) as info:
        verify_export(path, expected_key_id=ctx.signer.key_id)
    return info.value.seq, info.value.kind


def _edit(line: bytes) -> bytes:
    obj = json.loads(line)
    obj["data"]["operator_id"] = "someone-else"
    return canonical_json(obj)


def test_export_edit(exported: tuple[SiteContext, Path]) -> None:
    ctx, path = exported
    _lines(path, lambda lines: [*lines[:9], _edit(lines[9]), *lines[10:]])
    assert _export_broken(ctx, path) == (10, "changed")


def test_export_delete_middle(exported: tuple[SiteContext, Path]) -> None:
    ctx, path = exported
    _lines(path, lambda lines: lines[:9] + lines[10:])
    assert _export_broken(ctx, path) == (10, "deleted")


def test_export_delete_tail(exported: tuple[SiteContext, Path]) -> None:
    ctx, path = exported
    total = verify_export(path, expected_key_id=ctx.signer.key_id).count
    _lines(path, lambda lines: lines[:-4])
    assert _export_broken(ctx, path) == (total - 3, "truncated")


def test_export_reorder(exported: tuple[SiteContext, Path]) -> None:
    ctx, path = exported
    _lines(path, lambda lines: [*lines[:4], lines[5], lines[4], *lines[6:]])
    assert _export_broken(ctx, path) == (5, "reordered")


def test_export_file_cut_short(exported: tuple[SiteContext, Path]) -> None:
    ctx, path = exported
    members = _members(path)
    lines = members["entries.jsonl"].splitlines(keepends=True)
    kept = sum(len(line) for line in lines[:20])
    data = path.read_bytes()
    start = data.index(lines[0])
    path.write_bytes(data[:start + kept + 40])  # 20 whole lines and part of the 21st
    assert _export_broken(ctx, path) == (21, "truncated")


def test_export_resigned_with_another_key(exported: tuple[SiteContext, Path]) -> None:
    ctx, path = exported
    other = SigningKey.generate()
    members = _members(path)
    entries = [json.loads(line) for line in members["entries.jsonl"].splitlines()]
    chain = audit_trail.read_chain(ctx).entries
    forged: list[AuditEntry] = chain[:14]
    for entry in chain[14:]:
        data = dict(entry.data)
        data["operator_id"] = "forger"
        forged.append(build_entry(prev=forged[-1], time=ctx.clock(), actor=entry.actor,
                                  event=entry.event, data=data, signer=other))
    assert len(forged) == len(entries)
    body = b"".join(canonical_json(e.to_dict()) + b"\n" for e in forged)
    head = sign_checkpoint(forged[-1].seq, forged[-1].hash, forged[-1].time, other)
    manifest = canonical_json(build_manifest(forged, body, other.key_id, ctx.site_name,
                                             site_head=head, checkpoints=[])) + b"\n"
    _rewrite(path, {MANIFEST_MEMBER: manifest, SIGNATURE_MEMBER: other.sign(manifest).hex()
                    .encode(), "public_key.pem": other.verify_key.to_pem(),
                    "entries.jsonl": body})
    assert _export_broken(ctx, path) == (15, "bad_signature")
    result = CliRunner().invoke(audit_group, ["verify", str(path), "--key-id", ctx.signer.key_id])
    assert result.exit_code == 1
    assert "entry seq 15 is not signed by the manufacturer key (bad_signature)" in result.output


def test_later_and_range_exports_continue_an_older_one(exported: tuple[SiteContext, Path],
                                                       tmp_path: Path) -> None:
    ctx, older = exported
    key_id = ctx.signer.key_id
    kept = last_link(verify_export(older, expected_key_id=key_id))
    _grow(ctx, 10)
    later = tmp_path / "later.tar"
    admin.export_audit(ctx, later)
    assert verify_export(later, expected_key_id=key_id, continues=kept).continues == kept.seq
    tail = tmp_path / "range.tar"
    audit_trail.export_site_audit(ctx, tail, first_seq=kept.seq + 1)
    summary = verify_export(tail, expected_key_id=key_id, continues=kept)
    assert (summary.first_seq, summary.is_range, summary.continues) == (kept.seq + 1, True,
                                                                       kept.seq)
    middle = tmp_path / "middle.tar"
    audit_trail.export_site_audit(ctx, middle, first_seq=5, last_seq=kept.seq + 2)
    assert verify_export(middle, expected_key_id=key_id, continues=kept).is_range
    # An owner's checkpoint file from `site audit checkpoint`, checked through the CLI
    checkpoint = tmp_path / "head.json"
    audit_trail.write_checkpoint(ctx, checkpoint)
    ok = CliRunner().invoke(audit_group, ["verify", str(later), "--key-id", key_id,
                                          "--checkpoint", str(checkpoint)])
    assert ok.exit_code == 0, ok.output
    assert "continues the owner's checkpoint" in ok.output
    # A different history under the same key is not a continuation
    forked = json.loads(checkpoint.read_text())
    forked_cp = sign_checkpoint(kept.seq, "ab" * 32, forked["time"], ctx.signer)
    with pytest.raises(ChainBroken) as info:
        verify_export(later, expected_key_id=key_id, continues=forked_cp)
    assert (info.value.seq, info.value.kind) == (kept.seq, "not_continuation")


def test_tables_disagreeing_with_the_chain_are_an_audited_alarm(site: SiteContext) -> None:
    clean = site_report(site, Filter())
    assert [a.event for a in clean.report.alarms] == []
    _sql(site, "UPDATE orders SET produced = 3 WHERE order_id = 'o-test'")
    built = site_report(site, Filter())
    alarms = [a for a in built.report.alarms if a.event == "alarm_report_disagreement"]
    assert [a.detail for a in alarms] == [
        "order o-test: order table says 3 produced, 0 reserved; audit chain says 0, 0"]
    stored = audit_trail.verify_site_chain(site).entries[-1]
    assert (stored.event, stored.data["detail"]) == ("alarm_report_disagreement",
                                                     alarms[0].detail)
