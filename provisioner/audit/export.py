"""Write an audit export: a tar of entries, public key, manifest and its signature, atomically.

The manifest (count, first/last seq, head hash, digest of the entries) is signed with the
manufacturer key, so cutting entries off the end and rewriting the manifest is detected
by anyone without that key.
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

from provisioner.audit.chain import GENESIS_HASH, JSON, AuditEntry, canonical_json, verify_chain
from provisioner.errors import AuditError

if TYPE_CHECKING:
    from provisioner.crypto.signing import Signer

EXPORT_FORMAT = "provisioner-audit-export/1"
ENTRIES_MEMBER = "entries.jsonl"
KEY_MEMBER = "public_key.pem"
MANIFEST_MEMBER = "manifest.json"
SIGNATURE_MEMBER = "manifest.sig"
MEMBERS = (MANIFEST_MEMBER, SIGNATURE_MEMBER, KEY_MEMBER, ENTRIES_MEMBER)


def encode_entries(entries: Iterable[AuditEntry]) -> bytes:
    """Return JSON Lines: one canonical JSON object per entry, each ending in a newline."""
    return b"".join(canonical_json(entry.to_dict()) + b"\n" for entry in entries)


def build_manifest(
    entries: list[AuditEntry], entries_bytes: bytes, key_id: str, site_name: str
) -> dict[str, JSON]:
    """Return the manifest object describing ``entries`` as encoded in ``entries_bytes``."""
    return {
        "format": EXPORT_FORMAT,
        "site_name": site_name,
        "key_id": key_id,
        "count": len(entries),
        "first_seq": entries[0].seq if entries else 0,
        "last_seq": entries[-1].seq if entries else 0,
        "head_hash": entries[-1].hash if entries else GENESIS_HASH,
        "entries_sha256": hashlib.sha256(entries_bytes).hexdigest(),
    }


def _add_member(archive: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    info.mtime = 0  # deterministic archives: the same chain exports to the same bytes
    archive.addfile(info, io.BytesIO(payload))


def write_export(
    path: Path | str, entries: Iterable[AuditEntry], signer: Signer, *, site_name: str
) -> None:
    """Verify ``entries`` under ``signer``'s public key and write them as an export tar.

    The manifest is signed by ``signer`` (``manifest.sig``, hex Ed25519 over the manifest
    member's bytes). The file appears complete or not at all (temporary file, fsync, rename).

    Raises:
        ChainBroken: the entries do not verify (a broken chain is never exported).
        AuditError: the file cannot be written.
    """
    items = list(entries)
    verify_key = signer.verify_key
    verify_chain(items, verify_key)
    entries_bytes = encode_entries(items)
    manifest = build_manifest(items, entries_bytes, verify_key.key_id, site_name)
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
