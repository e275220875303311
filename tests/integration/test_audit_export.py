"""Audit export round trip, tampered exports and the `audit` CLI on real files."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.audit.chain import AuditEntry, AuditEvent, build_entry, canonical_json
from provisioner.audit.checkpoint import Checkpoint, sign_checkpoint
from provisioner.audit.commands import audit_group
from provisioner.audit.export import write_export
from provisioner.audit.verify import read_export, verify_export
from provisioner.crypto.signing import SigningKey, VerifyKey
from provisioner.errors import AuditError, ChainBroken

COUNT = 50


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def entries(signer: SigningKey) -> list[AuditEntry]:
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    out: list[AuditEntry] = []
    for i in range(COUNT):
        event = AuditEvent.grant_issued if i % 2 == 0 else AuditEvent.device_programmed
        out.append(build_entry(prev=out[-1] if out else None, time=start + timedelta(minutes=i),
                               actor="station:ST-1", event=event,
                               data={"order_id": "O-1", "station_id": "ST-1", "device_id": i // 2},
                               signer=signer))
    return out


@pytest.fixture
def export(tmp_path: Path, signer: SigningKey, entries: list[AuditEntry]) -> Path:
    path = tmp_path / "audit.tar"
    write_export(path, entries, signer, site_name="Plant <1>", site_head=head_of(entries, signer))
    return path


def head_of(entries: list[AuditEntry], signer: SigningKey) -> Checkpoint:
    return sign_checkpoint(entries[-1].seq, entries[-1].hash, entries[-1].time, signer)


def members_of(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {info.name: archive.extractfile(info).read()  # type: ignore[union-attr]
                for info in archive.getmembers()}


def rewrite(path: Path, change: Callable[[dict[str, bytes]], dict[str, bytes]]) -> None:
    members = change(members_of(path))
    with tarfile.open(path, "w") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))


def test_round_trip(export: Path, signer: SigningKey, entries: list[AuditEntry]) -> None:
    summary, read_back = read_export(export, expected_key=signer.verify_key)
    assert read_back == entries
    assert (summary.count, summary.first_seq, summary.last_seq) == (COUNT, 1, COUNT)
    assert summary.head_hash == entries[-1].hash
    assert summary.key_id == signer.key_id
    assert summary.key_pinned
    assert (summary.first_time, summary.last_time) == (entries[0].time, entries[-1].time)
    assert summary.site_name == "Plant <1>"
    assert sorted(members_of(export)) == [
        "entries.jsonl", "manifest.json", "manifest.sig", "public_key.pem"]
    assert not verify_export(export).key_pinned
    assert not list(export.parent.glob(".audit.tar.*"))


def test_export_is_deterministic(tmp_path: Path, signer: SigningKey,
                                 entries: list[AuditEntry], export: Path) -> None:
    again = tmp_path / "again.tar"
    write_export(again, entries, signer, site_name="Plant <1>", site_head=head_of(entries, signer))
    assert again.read_bytes() == export.read_bytes()


def test_broken_chain_is_never_exported(tmp_path: Path, signer: SigningKey,
                                        entries: list[AuditEntry]) -> None:
    with pytest.raises(ChainBroken):
        write_export(tmp_path / "x.tar", entries[:10] + entries[11:], signer, site_name="s",
                     site_head=head_of(entries, signer))
    assert not (tmp_path / "x.tar").exists()


def _edit_line(index: int, change: Callable[[dict[str, object]], None]
               ) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    def apply(members: dict[str, bytes]) -> dict[str, bytes]:
        lines = members["entries.jsonl"].splitlines()
        obj = json.loads(lines[index])
        change(obj)
        lines[index] = canonical_json(obj)
        return {**members, "entries.jsonl": b"\n".join(lines) + b"\n"}
    return apply


def test_changed_entry_in_export_is_named(export: Path) -> None:
    rewrite(export, _edit_line(20, lambda obj: obj["data"].update(device_id=999)))  # type: ignore[attr-defined]
    with pytest.raises(ChainBroken) as info:
        verify_export(export)
    assert (info.value.seq, info.value.kind) == (21, "changed")


def test_deleted_head_is_caught_by_the_signed_head(export: Path) -> None:
    rewrite(export, lambda m: {**m, "entries.jsonl": b"".join(
        line + b"\n" for line in m["entries.jsonl"].splitlines()[:-1])})
    with pytest.raises(ChainBroken) as info:
        verify_export(export)
    assert (info.value.seq, info.value.kind) == (COUNT, "truncated")


def test_tampered_manifest_is_caught(export: Path) -> None:
    def change(members: dict[str, bytes]) -> dict[str, bytes]:
        manifest = json.loads(members["manifest.json"])
        manifest["count"] = COUNT + 1
        return {**members, "manifest.json": canonical_json(manifest)}
    rewrite(export, change)
    with pytest.raises(AuditError, match=r"manifest\.json is not signed by key"):
        verify_export(export)


def test_truncation_with_a_rewritten_manifest_is_caught(export: Path) -> None:
    """Cutting the newest entries and recomputing the manifest needs the signing key."""
    def truncate(members: dict[str, bytes]) -> dict[str, bytes]:
        lines = members["entries.jsonl"].splitlines()[:-3]
        body = b"".join(line + b"\n" for line in lines)
        manifest = json.loads(members["manifest.json"])
        last = json.loads(lines[-1])
        manifest.update(count=len(lines), last_seq=last["seq"], head_hash=last["hash"],
                        entries_sha256=hashlib.sha256(body).hexdigest())
        return {**members, "entries.jsonl": body,
                "manifest.json": canonical_json(manifest) + b"\n"}
    rewrite(export, truncate)
    with pytest.raises(AuditError, match="not signed by key"):
        verify_export(export)


@pytest.mark.parametrize(
    "member", ["entries.jsonl", "manifest.json", "manifest.sig", "public_key.pem"])
def test_missing_member_is_named(export: Path, member: str) -> None:
    rewrite(export, lambda m: {k: v for k, v in m.items() if k != member})
    with pytest.raises(AuditError, match=f"lacks member.*{member}"):
        verify_export(export)


def test_swapped_public_key_fails_signatures_or_pin(export: Path, signer: SigningKey) -> None:
    other = SigningKey.generate().verify_key
    rewrite(export, lambda m: {**m, "public_key.pem": other.to_pem()})
    with pytest.raises(AuditError, match="not the pinned manufacturer key"):
        verify_export(export, expected_key=signer.verify_key)
    with pytest.raises(AuditError, match="key_id"):
        verify_export(export)


def test_garbage_is_an_audit_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.tar"
    path.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(AuditError, match="not a readable audit export"):
        verify_export(path)


def test_cli_verify_ok_and_pinned(export: Path, signer: SigningKey, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(audit_group, ["verify", str(export)])
    assert result.exit_code == 0, result.output
    assert f"OK: {COUNT} entries" in result.output
    assert "internal consistency only" in result.output
    pem = tmp_path / "maker.pem"
    pem.write_bytes(signer.verify_key.to_pem())
    result = runner.invoke(audit_group, ["verify", str(export), "--key", str(pem)])
    assert result.exit_code == 0, result.output
    assert f"pinned manufacturer key {signer.key_id}" in result.output


def test_cli_verify_names_the_bad_entry(export: Path) -> None:
    rewrite(export, lambda m: {**m, "entries.jsonl": b"".join(
        line + b"\n" for i, line in enumerate(m["entries.jsonl"].splitlines()) if i != 9)})
    result = CliRunner().invoke(audit_group, ["verify", str(export)])
    assert result.exit_code == 1
    assert "entry seq 10 is missing (deleted)" in result.output


def test_cli_report_text_and_html(export: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    unpinned = CliRunner().invoke(audit_group, ["report", str(export)])
    assert unpinned.exit_code == 2
    assert "--key-id" in unpinned.output
    pinned = VerifyKey.from_pem(members_of(export)["public_key.pem"]).key_id
    result = CliRunner().invoke(audit_group, ["report", str(export), "--key-id", pinned,
                                              "--html", str(out)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("ST-1"))
    assert row.split() == ["ST-1", "25", "25", "25", "0", "0", "0", "0", "100%"]
    page = out.read_text(encoding="utf-8")
    assert "Plant &lt;1&gt;" in page
    assert "<svg" in page
