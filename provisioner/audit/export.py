"""Write an audit export: a tar of entries, public key, manifest and its signature, atomically.

The manifest (count, first/last seq and the first link, head hash, digest of the entries, the
site's signed head and the signed checkpoints inside the span) is signed with the
manufacturer key, so cutting entries off the end and rewriting the manifest is detected by
anyone without that key, and an export of a chain shorter than its signed head is refused.
A range export (``first_seq`` > 1) verifies from its own first link.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.audit.chain import GENESIS_HASH, JSON, AuditEntry, canonical_json
from provisioner.audit.checkpoint import Checkpoint, verify_anchored
from provisioner.errors import AuditError

if TYPE_CHECKING:
    from provisioner.crypto.signing import Signer

EXPORT_FORMAT = "provisioner-audit-export/2"
ENTRIES_MEMBER = "entries.jsonl"
KEY_MEMBER = "public_key.pem"
MANIFEST_MEMBER = "manifest.json"
SIGNATURE_MEMBER = "manifest.sig"
MEMBERS = (MANIFEST_MEMBER, SIGNATURE_MEMBER, KEY_MEMBER, ENTRIES_MEMBER)


def encode_entries(entries: Iterable[AuditEntry]) -> bytes:
    """Return JSON Lines: one canonical JSON object per entry, each ending in a newline."""
    return b"".join(canonical_json(entry.to_dict()) + b"\n" for entry in entries)


def build_manifest(
    entries: list[AuditEntry], entries_bytes: bytes, key_id: str, site_name: str, *,
    site_head: Checkpoint, checkpoints: list[Checkpoint],
) -> dict[str, JSON]:
    """Return the manifest object describing ``entries`` as encoded in ``entries_bytes``."""
    return {
        "format": EXPORT_FORMAT,
        "site_name": site_name,
        "key_id": key_id,
        "count": len(entries),
        "first_seq": entries[0].seq if entries else 0,
        "last_seq": entries[-1].seq if entries else 0,
        "first_prev_hash": entries[0].prev_hash if entries else GENESIS_HASH,
        "head_hash": entries[-1].hash if entries else GENESIS_HASH,
        "entries_sha256": hashlib.sha256(entries_bytes).hexdigest(),
        "site_head": site_head.to_dict(),
        "checkpoints": [checkpoint.to_dict() for checkpoint in checkpoints],
    }


def _add_member(archive: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    info.mtime = 0  # deterministic archives: the same chain exports to the same bytes
    archive.addfile(info, io.BytesIO(payload))


def write_export(
    path: Path | str, entries: Iterable[AuditEntry], signer: Signer, *, site_name: str,
    site_head: Checkpoint, checkpoints: Iterable[Checkpoint] = (),
) -> None:
    """Verify ``entries`` (a chain from seq 1, or a range) and write them as an export tar.

    ``site_head`` is the site's signed head when the entries were read (entries ending at its
    seq must end at its hash; whether the stored chain is complete is the caller's check).
    ``checkpoints`` are the site's stored checkpoints; those inside the span go in the
    manifest. The manifest is signed by ``signer`` (``manifest.sig``, hex
    Ed25519 over the manifest member's bytes). The file appears complete or not at all
    (temporary file, fsync, rename).

    Raises:
        ChainBroken: the entries do not verify or stop short of the head (never exported).
        AuditError: the file cannot be written.
    """
    items = list(entries)
    verify_key = signer.verify_key
    first_seq = items[0].seq if items else 1
    last_seq = items[-1].seq if items else 0
    inside = [cp for cp in checkpoints if first_seq <= cp.seq <= last_seq]
    start = (first_seq, items[0].prev_hash if first_seq > 1 else GENESIS_HASH)
    verify_anchored(items, verify_key, anchors=inside,
                    head=site_head if last_seq == site_head.seq else None, start=start)
    entries_bytes = encode_entries(items)
    manifest = build_manifest(items, entries_bytes, verify_key.key_id, site_name,
                              site_head=site_head, checkpoints=inside)
    manifest_bytes = canonical_json(manifest) + b"\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        _add_member(archive, MANIFEST_MEMBER, manifest_bytes)
        _add_member(archive, SIGNATURE_MEMBER, signer.sign(manifest_bytes).hex().encode())
        _add_member(archive, KEY_MEMBER, verify_key.to_pem())
        _add_member(archive, ENTRIES_MEMBER, entries_bytes)
    target = Path(path)
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(buffer.getvalue())
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise AuditError(f"{target}: cannot write audit export: {exc.strerror}") from exc
