"""Verify an audit export offline: members, manifest, key, chain and signatures."""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from provisioner.audit.chain import GENESIS_HASH, AuditEntry, entry_from_json
from provisioner.audit.checkpoint import (
    Checkpoint,
    check_anchor,
    checkpoint_from_json,
    verify_anchored,
)
from provisioner.audit.export import (
    ENTRIES_MEMBER,
    EXPORT_FORMAT,
    KEY_MEMBER,
    MANIFEST_MEMBER,
    MEMBERS,
    SIGNATURE_MEMBER,
)
from provisioner.crypto.signing import VerifyKey
from provisioner.errors import AuditError, BadSignature, ChainBroken, CryptoError

_MAX_MEMBER_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class VerifySummary:
    """What a verified export holds; ``key_pinned`` says whether the key was checked.

    ``is_range`` is true when the export does not run from seq 1 to the site's signed head;
    ``continues`` names the seq of the owner's checkpoint it was proven to continue.
    """

    site_name: str
    count: int
    first_seq: int
    last_seq: int
    head_hash: str
    key_id: str
    first_time: str | None
    last_time: str | None
    key_pinned: bool
    site_head: Checkpoint
    checkpoints: int
    is_range: bool
    continues: int | None = None


def _read_member(path: Path, archive: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    """Read a member; an entries member cut off by a short file yields the bytes that are there
    (verified as truncated), read straight from the uncompressed tar at its data offset."""
    if info.name == ENTRIES_MEMBER:
        with path.open("rb") as raw:
            raw.seek(info.offset_data)
            return raw.read(info.size)
    handle = archive.extractfile(info)
    if handle is None:
        raise AuditError(f"{path}: member {info.name!r} cannot be read")
    return handle.read()


def _next_member(archive: tarfile.TarFile, after_entries: bool) -> tarfile.TarInfo | None:
    """The next member; a file cut off in (or after) the entries member simply ends there."""
    try:
        return archive.next()
    except tarfile.ReadError:
        if after_entries:
            return None
        raise


def _read_members(path: Path) -> dict[str, bytes]:
    try:
        with tarfile.open(path, mode="r:") as archive:
            members: dict[str, bytes] = {}
            while (info := _next_member(archive, ENTRIES_MEMBER in members)) is not None:
                if info.name not in MEMBERS:
                    raise AuditError(f"{path}: unexpected member {info.name!r} in audit export")
                if not info.isfile() or info.size > _MAX_MEMBER_BYTES:
                    reason = "is not a regular file (or is over 1 GiB)"
                    raise AuditError(f"{path}: member {info.name!r} {reason}")
                if info.name in members:
                    raise AuditError(f"{path}: member {info.name!r} appears twice")
                members[info.name] = _read_member(path, archive, info)
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
        "last_seq": int, "first_prev_hash": str, "head_hash": str, "entries_sha256": str,
        "site_head": dict, "checkpoints": list,
    }
    if not isinstance(manifest, dict) or set(manifest) != set(fields):
        raise AuditError(f"{path}: {MANIFEST_MEMBER} must hold exactly {sorted(fields)}")
    for name, kind in fields.items():
        if not isinstance(manifest[name], kind) or isinstance(manifest[name], bool):
            raise AuditError(f"{path}: {MANIFEST_MEMBER}: {name!r} must be {kind.__name__}")
    if manifest["format"] != EXPORT_FORMAT:
        raise AuditError(f"{path}: unsupported export format {manifest['format']!r}")
    return manifest


def _entries(path: Path, raw: bytes) -> tuple[list[AuditEntry], bool]:
    """Parse JSON Lines; the flag says the last line was cut off (no newline, not JSON)."""
    entries: list[AuditEntry] = []
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        where = f"{path}:{ENTRIES_MEMBER}:{number}"
        try:
            obj = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if number == len(lines):
                return entries, True
            raise AuditError(f"{where}: not valid JSON: {exc}") from exc
        entries.append(entry_from_json(obj, where=where))
    return entries, False


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


def _pinned_key(
    source: Path, members: dict[str, bytes], expected_key: VerifyKey | None,
    expected_key_id: str | None,
) -> VerifyKey:
    try:
        key = VerifyKey.from_pem(members[KEY_MEMBER])
    except (CryptoError, ValueError) as exc:
        raise AuditError(f"{source}: {KEY_MEMBER} is not an Ed25519 public key") from exc
    pinned = expected_key.key_id if expected_key is not None else expected_key_id
    if pinned is not None and pinned != key.key_id:
        raise AuditError(
            f"{source}: export carries key {key.key_id}, not the pinned manufacturer key "
            f"{pinned}: nothing in it is signed by the key you trust"
        )
    return expected_key if expected_key is not None else key


def _first_foreign_entry(source: Path, members: dict[str, bytes], pinned: str) -> None:
    """Name the first entry not claiming the pinned key (an export re-signed by another key)."""
    entries, _ = _entries(source, members[ENTRIES_MEMBER])
    for entry in entries:
        if entry.key_id != pinned:
            raise ChainBroken(entry.seq, "bad_signature")


def read_export(
    path: Path | str, *, expected_key: VerifyKey | None = None,
    expected_key_id: str | None = None, every_signature: bool = False,
    continues: Checkpoint | None = None,
) -> tuple[VerifySummary, list[AuditEntry]]:
    """Verify the export at ``path`` and return its summary and entries.

    Without ``expected_key``/``expected_key_id`` the key inside the export is used, which
    only proves the export is internally consistent; pin the manufacturer key to prove origin.
    Every entry's hash and link is checked; signatures are checked on the signed head and
    checkpoints (each vouches for every entry before it) and on the entries after the last
    one, or on every entry with ``every_signature``. ``continues`` is a checkpoint the owner
    holds (from an older export): the export must contain it or start right after it.

    Raises:
        ChainBroken: the first bad entry (seq and kind).
        AuditError: unreadable tar, missing/extra member, bad manifest or manifest signature,
            bad key or key mismatch, a checkpoint outside the export's span.
    """
    source = Path(path)
    members = _read_members(source)
    manifest = _manifest(source, members[MANIFEST_MEMBER])
    pinned = expected_key.key_id if expected_key is not None else expected_key_id
    try:
        key = _pinned_key(source, members, expected_key, expected_key_id)
    except AuditError:
        if pinned is not None:
            _first_foreign_entry(source, members, pinned)
        raise
    _check(source, "key_id", manifest, key.key_id)
    _check_manifest_signature(source, key, members[MANIFEST_MEMBER], members[SIGNATURE_MEMBER])
    site_head = checkpoint_from_json(manifest["site_head"], where=f"{source}: site_head")
    listed = manifest["checkpoints"]
    assert isinstance(listed, list)  # checked by _manifest
    anchors = [checkpoint_from_json(item, where=f"{source}: checkpoints") for item in listed]
    entries, cut = _entries(source, members[ENTRIES_MEMBER])
    first_seq, last_seq = manifest["first_seq"], manifest["last_seq"]
    assert isinstance(first_seq, int)
    assert isinstance(last_seq, int)
    start = (first_seq or 1, str(manifest["first_prev_hash"]))
    # A full export, or a range ending at the site's head, is anchored by the signed head.
    at_head = last_seq == site_head.seq
    is_full = first_seq in (0, 1) and at_head
    count = verify_anchored(
        entries, key, anchors=anchors, head=site_head if at_head else None,
        every_signature=every_signature, start=start,
    )
    found_last = entries[-1].seq if entries else first_seq - 1
    if found_last < last_seq:
        # A full export stops short of its head inside verify_anchored; a range here.
        raise ChainBroken(found_last + 1, "truncated")
    if cut:
        raise ChainBroken(found_last + 1, "truncated")
    _check(source, "entries_sha256", manifest, hashlib.sha256(members[ENTRIES_MEMBER]).hexdigest())
    _check(source, "count", manifest, count)
    _check(source, "last_seq", manifest, entries[-1].seq if entries else 0)
    _check(source, "head_hash", manifest, entries[-1].hash if entries else GENESIS_HASH)
    continued = None
    if continues is not None:
        if not check_anchor(entries, continues):
            raise AuditError(
                f"{source}: the owner's checkpoint at seq {continues.seq} lies outside this "
                f"export (seq {first_seq}..{last_seq}); export a range that includes it"
            )
        continued = continues.seq
    summary = VerifySummary(
        site_name=str(manifest["site_name"]),
        count=count,
        first_seq=entries[0].seq if entries else 0,
        last_seq=entries[-1].seq if entries else 0,
        head_hash=entries[-1].hash if entries else GENESIS_HASH,
        key_id=key.key_id,
        first_time=entries[0].time if entries else None,
        last_time=entries[-1].time if entries else None,
        key_pinned=pinned is not None,
        site_head=site_head,
        checkpoints=len(anchors),
        is_range=not is_full,
        continues=continued,
    )
    return summary, entries


def verify_export(
    path: Path | str, *, expected_key: VerifyKey | None = None,
    expected_key_id: str | None = None, every_signature: bool = False,
    continues: Checkpoint | None = None,
) -> VerifySummary:
    """Verify the export at ``path`` and return its summary (see ``read_export``)."""
    summary, _ = read_export(path, expected_key=expected_key, expected_key_id=expected_key_id,
                             every_signature=every_signature, continues=continues)
    return summary


def last_link(summary: VerifySummary) -> Checkpoint:
    """Return a verified export's last entry as a checkpoint a later export must continue.

    Its authenticity was proven by the export's signed manifest, so it carries no signature.
    """
    return Checkpoint(summary.last_seq, summary.head_hash, summary.last_time or "",
                      summary.key_id, "")
