"""Verify an audit export offline: members, manifest, key, chain and signatures."""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from provisioner.audit.chain import GENESIS_HASH, AuditEntry, entry_from_json, verify_chain
from provisioner.audit.export import (
    ENTRIES_MEMBER,
    EXPORT_FORMAT,
    KEY_MEMBER,
    MANIFEST_MEMBER,
    MEMBERS,
    SIGNATURE_MEMBER,
)
from provisioner.crypto.signing import VerifyKey
from provisioner.errors import AuditError, BadSignature, CryptoError

_MAX_MEMBER_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class VerifySummary:
    """What a verified export holds; ``key_pinned`` says whether the key was checked."""

    site_name: str
    count: int
    first_seq: int
    last_seq: int
    head_hash: str
    key_id: str
    first_time: str | None
    last_time: str | None
    key_pinned: bool


def _read_members(path: Path) -> dict[str, bytes]:
    try:
        with tarfile.open(path, mode="r:") as archive:
            members: dict[str, bytes] = {}
            for info in archive.getmembers():
                if info.name not in MEMBERS:
                    raise AuditError(f"{path}: unexpected member {info.name!r} in audit export")
                if not info.isfile() or info.size > _MAX_MEMBER_BYTES:
                    reason = "is not a regular file (or is over 1 GiB)"
                    raise AuditError(f"{path}: member {info.name!r} {reason}")
                if info.name in members:
                    raise AuditError(f"{path}: member {info.name!r} appears twice")
                handle = archive.extractfile(info)
                if handle is None:
                    raise AuditError(f"{path}: member {info.name!r} cannot be read")
                members[info.name] = handle.read()
    except (OSError, tarfile.TarError) as exc:
        raise AuditError(f"{path}: not a readable audit export: {exc}") from exc
    missing = [name for name in MEMBERS if name not in members]
    if missing:
        raise AuditError(f"{path}: audit export lacks member(s) {', '.join(missing)}")
    return members


def _manifest(path: Path, raw: bytes) -> dict[str, object]:
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditError(f"{path}: {MANIFEST_MEMBER} is not valid JSON: {exc}") from exc
    fields = {
        "format": str, "site_name": str, "key_id": str, "count": int, "first_seq": int,
        "last_seq": int, "head_hash": str, "entries_sha256": str,
    }
    if not isinstance(manifest, dict) or set(manifest) != set(fields):
        raise AuditError(f"{path}: {MANIFEST_MEMBER} must hold exactly {sorted(fields)}")
    for name, kind in fields.items():
        if not isinstance(manifest[name], kind) or isinstance(manifest[name], bool):
            raise AuditError(f"{path}: {MANIFEST_MEMBER}: {name!r} must be {kind.__name__}")
    if manifest["format"] != EXPORT_FORMAT:
        raise AuditError(f"{path}: unsupported export format {manifest['format']!r}")
    return manifest


def _entries(path: Path, raw: bytes) -> list[AuditEntry]:
    entries = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line:
            continue
        where = f"{path}:{ENTRIES_MEMBER}:{number}"
        try:
            obj = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AuditError(f"{where}: not valid JSON: {exc}") from exc
        entries.append(entry_from_json(obj, where=where))
    return entries


def _check(path: Path, name: str, manifest: dict[str, object], found: object) -> None:
    if manifest[name] != found:
        raise AuditError(
            f"{path}: {MANIFEST_MEMBER} says {name} = {manifest[name]!r}, entries give {found!r}"
        )


def _check_manifest_signature(path: Path, key: VerifyKey, manifest: bytes, raw: bytes) -> None:
    try:
        signature = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as exc:
        raise AuditError(f"{path}: {SIGNATURE_MEMBER} is not a hex signature") from exc
    try:
        key.verify(manifest, signature, what=MANIFEST_MEMBER)
    except BadSignature as exc:
        raise AuditError(
            f"{path}: {MANIFEST_MEMBER} is not signed by key {key.key_id} "
            "(the manifest or its signature was changed)"
        ) from exc


def read_export(
    path: Path | str, *, expected_key: VerifyKey | None = None, expected_key_id: str | None = None
) -> tuple[VerifySummary, list[AuditEntry]]:
    """Verify the export at ``path`` and return its summary and entries.

    Without ``expected_key``/``expected_key_id`` the key inside the export is used, which
    only proves the export is internally consistent; pin the manufacturer key to prove origin.

    Raises:
        ChainBroken: the first bad entry (seq and kind).
        AuditError: unreadable tar, missing/extra member, bad manifest or manifest signature,
            bad key or key mismatch.
    """
    source = Path(path)
    members = _read_members(source)
    manifest = _manifest(source, members[MANIFEST_MEMBER])
    try:
        key = VerifyKey.from_pem(members[KEY_MEMBER])
    except (CryptoError, ValueError) as exc:
        raise AuditError(f"{source}: {KEY_MEMBER} is not an Ed25519 public key") from exc
    if expected_key is not None and expected_key.key_id != key.key_id:
        raise AuditError(
            f"{source}: export is signed by key {key.key_id}, "
            f"not the pinned manufacturer key {expected_key.key_id}"
        )
    if expected_key_id is not None and expected_key_id != key.key_id:
        raise AuditError(
            f"{source}: export is signed by key {key.key_id}, not the expected {expected_key_id}"
        )
    _check(source, "key_id", manifest, key.key_id)
    _check_manifest_signature(source, key, members[MANIFEST_MEMBER], members[SIGNATURE_MEMBER])
    entries = _entries(source, members[ENTRIES_MEMBER])
    count = verify_chain(entries, key)
    _check(source, "entries_sha256", manifest, hashlib.sha256(members[ENTRIES_MEMBER]).hexdigest())
    _check(source, "count", manifest, count)
    _check(source, "first_seq", manifest, entries[0].seq if entries else 0)
    _check(source, "last_seq", manifest, entries[-1].seq if entries else 0)
    _check(source, "head_hash", manifest, entries[-1].hash if entries else GENESIS_HASH)
    summary = VerifySummary(
        site_name=str(manifest["site_name"]),
        count=count,
        first_seq=entries[0].seq if entries else 0,
        last_seq=entries[-1].seq if entries else 0,
        head_hash=entries[-1].hash if entries else GENESIS_HASH,
        key_id=key.key_id,
        first_time=entries[0].time if entries else None,
        last_time=entries[-1].time if entries else None,
        key_pinned=expected_key is not None or expected_key_id is not None,
    )
    return summary, entries


def verify_export(
    path: Path | str, *, expected_key: VerifyKey | None = None, expected_key_id: str | None = None
) -> VerifySummary:
    """Verify the export at ``path`` and return its summary (see ``read_export``)."""
    summary, _ = read_export(path, expected_key=expected_key, expected_key_id=expected_key_id)
    return summary
