"""Move a key-file site onto a PKCS#11 token: import, re-wrap, verify, then shred the files.

Order (each step safe to interrupt, and ``migrate_to_token`` safe to run again):

1. the Ed25519 and CA keys are imported as non-extractable objects (their public halves are
   kept, so the audit chain, firmware signatures and station certificates stay valid); a new
   AES master key is generated on the token (the old one was on disk: it is retired);
2. ``keys-migrating.json`` is written: a site that finds it refuses to open;
3. one database transaction re-wraps every wrapped column under the token key and appends
   the ``site_keys_migrated`` audit entry, signed on the token;
4. round trip: a fresh login unwraps every row and compares digests with the file-key
   plaintext, signs and verifies, issues a test certificate, and verifies the whole chain;
5. ``keys.json`` switches the site to the token, then the key files are overwritten and
   unlinked (``site_key_files_shredded`` audited).

A rerun re-wraps only the rows the file key still opens, so it completes either half.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from provisioner.audit.chain import AuditEvent, verify_chain
from provisioner.crypto.secret import Secret
from provisioner.errors import CryptoError, DecryptError
from provisioner.hsm import objects
from provisioner.hsm.errors import TokenKeyUnsafe
from provisioner.hsm.objects import KeyKind
from provisioner.hsm.token import Token
from provisioner.site import keys
from provisioner.site.context import (
    device_key_aad,
    firmware_aad,
    release_aad,
    seed_aad,
    transport_aad,
)
from provisioner.site.db import repo
from provisioner.site.db.engine import make_engine, make_session_factory, transaction
from provisioner.site.db.models import Device, Firmware, Release, Station
from provisioner.site.keyprovider.config import TokenConfig, keys_path, write_token_config
from provisioner.site.keyprovider.files import FileKeys
from provisioner.site.keyprovider.setup import MIGRATION_MARKER
from provisioner.site.keyprovider.token_keys import TokenKeys
from provisioner.site.sitedir import SiteDir, SiteDirError

MARKER = MIGRATION_MARKER
ACTOR = "admin"

# Every column holding a blob wrapped under the master key, with the AAD that binds it.
WRAPPED: tuple[tuple[type[Any], str, Callable[[Any], bytes]], ...] = (
    (Station, "wrapped_seed", lambda row: seed_aad(row.station_id)),
    (Station, "wrapped_transport_key", lambda row: transport_aad(row.station_id)),
    (Firmware, "wrapped_bytes", lambda row: firmware_aad(row.firmware_id)),
    (Device, "wrapped_key", lambda row: device_key_aad(row.device_id, row.drbg_index)),
    (Release, "wrapped_image", lambda row: release_aad(row.release_id)),
)


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """What moved: re-wrapped blobs, the kept signing key id, the shredded files."""

    rewrapped: int
    verified: int
    signing_key_id: str
    shredded: tuple[Path, ...]


def marker_path(root: Path) -> Path:
    """The file that marks a migration in progress."""
    return root / MARKER


def _import_or_adopt(token: Token, label: str, kind: KeyKind, value: Secret,
                     public: bytes) -> None:
    if objects.has_key(token, label, kind):
        objects.check_protected(token, label, kind)
        if not hmac.compare_digest(objects.public_point(token, label, kind), public):
            raise TokenKeyUnsafe(token.token_label, label,
                                 "already holds a different key; choose another label")
        return
    objects.import_private(token, label, kind, value, public)


def _import_keys(token: Token, paths: SiteDir, config: TokenConfig) -> None:
    signing = serialization.load_pem_private_key(paths.signing_key.read_bytes(), password=None)
    ca_key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    if not isinstance(signing, Ed25519PrivateKey) or not isinstance(
            ca_key, ec.EllipticCurvePrivateKey):
        raise CryptoError("site key files are not an Ed25519 signing key and an EC CA key")
    raw = serialization.Encoding.Raw
    with Secret(signing.private_bytes(raw, serialization.PrivateFormat.Raw,
                                      serialization.NoEncryption())) as value:
        _import_or_adopt(token, config.signing_label, KeyKind.ed25519, value,
                         signing.public_key().public_bytes(raw, serialization.PublicFormat.Raw))
    with Secret(ca_key.private_numbers().private_value.to_bytes(32, "big")) as value:
        point = ca_key.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)
        _import_or_adopt(token, config.ca_label, KeyKind.p256, value, point)
    if objects.has_key(token, config.master_label, KeyKind.aes):
        objects.check_protected(token, config.master_label, KeyKind.aes)
    else:
        objects.generate(token, config.master_label, KeyKind.aes)


def _rows(session: Any) -> Iterator[tuple[Any, str, bytes]]:
    for model, column, aad in WRAPPED:
        for row in session.scalars(select(model)):
            yield row, column, aad(row)


def shred(path: Path) -> None:
    """Overwrite a file with random bytes, fsync, then unlink it.

    On copy-on-write or journalling storage old blocks may survive: docs/keys.md says so.
    """
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.write(os.urandom(size))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def migrate_to_token(
    root: Path, config: TokenConfig, pin: Secret, *, now: Callable[[], datetime],
    db_url: str | None = None,
) -> MigrationResult:
    """Move the site at ``root`` from key files onto the token ``config`` names.

    Raises:
        SiteDirError: the site already uses a token.
        TokenError, CryptoError, ChainBroken: nothing is shredded then; rerun after the fix.
    """
    paths = SiteDir(root)
    if keys_path(root).exists():
        raise SiteDirError(root, "the site already keeps its keys on a PKCS#11 token")
    settings = paths.read_settings()
    files = FileKeys(root)
    engine = make_engine(db_url or settings.db_url)
    factory = make_session_factory(engine)
    try:
        token = Token(config.module, config.token_label, pin)
        try:
            _import_keys(token, paths, config)
        finally:
            token.close()
        write_token_config(root, config, name=MARKER)
        digests: dict[tuple[str, str, str], bytes] = {}
        rewrapped = _rewrap(root, config, pin, files, factory, now, digests)
        verified = _round_trip(root, config, pin, files, factory, now(), digests)
        write_token_config(root, config)
        marker_path(root).unlink()
        files.close()
        shredded = tuple(p for p in (paths.master_key, paths.signing_key, paths.ca_key)
                         if p.exists())
        for path in shredded:
            shred(path)
        site_keys = TokenKeys.open(root, config, pin)
        try:
            with transaction(factory) as session:
                repo.append_audit(session, signer=site_keys.signer, now=now(), actor=ACTOR,
                                  event=AuditEvent.site_key_files_shredded,
                                  data={"files": [p.name for p in shredded]})
            key_id = site_keys.signer.key_id
        finally:
            site_keys.close()
    finally:
        files.close()
        engine.dispose()
    return MigrationResult(rewrapped, verified, key_id, shredded)


def _row_key(row: Any, column: str) -> tuple[str, str, str]:
    return type(row).__name__, column, repr(row.__mapper__.primary_key_from_instance(row))


def _rewrap(root: Path, config: TokenConfig, pin: Secret, files: FileKeys, factory: Any,
            now: Callable[[], datetime], digests: dict[tuple[str, str, str], bytes]) -> int:
    site_keys = TokenKeys.open(root, config, pin)
    try:
        if site_keys.signer.verify_key != files.signer.verify_key:
            raise CryptoError("the token's signing key is not the site's signing key")
        count = 0
        with transaction(factory) as session:
            for row, column, aad in _rows(session):
                try:
                    plain = files.unwrap(getattr(row, column), aad)
                except DecryptError:
                    continue  # re-wrapped by an earlier run; the round trip checks it
                with plain:
                    digests[_row_key(row, column)] = hashlib.sha256(plain.reveal()).digest()
                    setattr(row, column, site_keys.wrap(plain.reveal(), aad))
                count += 1
            session.flush()
            repo.append_audit(session, signer=site_keys.signer, now=now(), actor=ACTOR,
                              event=AuditEvent.site_keys_migrated,
                              data={"provider": "pkcs11", "token_label": config.token_label,
                                    "module": config.module, "rewrapped": count,
                                    "key_id": site_keys.signer.key_id})
        return count
    finally:
        site_keys.close()


def _round_trip(root: Path, config: TokenConfig, pin: Secret, files: FileKeys, factory: Any,
                moment: datetime, digests: dict[tuple[str, str, str], bytes]) -> int:
    """Check, with a fresh login, that the token opens every row to the plaintext the file
    key gave, that the file key opens none, and that the token signs for the site."""
    site_keys = TokenKeys.open(root, config, pin)
    try:
        count = 0
        with factory() as session:
            for row, column, aad in _rows(session):
                blob = getattr(row, column)
                with site_keys.unwrap(blob, aad) as plain:
                    expected = digests.get(_row_key(row, column))
                    found = hashlib.sha256(plain.reveal()).digest()
                    if expected is not None and not hmac.compare_digest(expected, found):
                        raise CryptoError(f"{type(row).__name__}.{column} changed in re-wrapping")
                    count += 1
                try:
                    files.unwrap(blob, aad).wipe()
                except DecryptError:
                    continue
                raise CryptoError(f"{type(row).__name__}.{column} is still under the file key")
            entries = repo.audit_entries(session)
        verify_chain(entries, files.signer.verify_key)
        challenge = hashlib.sha256(b"provisioner/migrate/round-trip" + os.urandom(16)).digest()
        files.signer.verify_key.verify(challenge, site_keys.signer.sign(challenge), "round trip")
        test_cert = keys.issue_station_cert(site_keys.ca, "round-trip", "round-trip", moment)
        test_cert.cert.verify_directly_issued_by(files.ca.cert)
        test_cert.key_pem.wipe()
        return count
    finally:
        site_keys.close()

