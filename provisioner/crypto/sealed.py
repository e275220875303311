"""Passphrase-sealed files (scrypt + AES-256-GCM, versioned header) and the station secrets in them.

Layout, all integers big-endian (the whole 65-byte header is the GCM associated data)::

    magic "PSEAL" | version u8 | log2(n) u8 | r u8 | p u8 | salt[16] | key_check[16]
    | nonce[12] | payload_bytes u32 | header_digest[8] = SHA-256(preceding 57 bytes)[:8]
    then ciphertext[payload_bytes] | tag[16]

scrypt yields 48 bytes: the AES key (32) and a key-check value (16) that tells a wrong
passphrase apart from a modified body. The header digest catches accidental header damage
before any scrypt parameter from it is trusted.
"""

from __future__ import annotations

import hmac
import logging
import os
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from provisioner.crypto.secret import Secret
from provisioner.errors import (
    CryptoError,
    Tampered,
    Truncated,
    UnsupportedVersion,
    WrongPassphrase,
)

MAGIC = b"PSEAL"
VERSION = 1
DEFAULT_SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MAX_LOG2_N = 20
_FIELDS = struct.Struct(">5sBBBB16s16s12sI")
_DIGEST_SIZE_BYTES = 8
HEADER_SIZE_BYTES = _FIELDS.size + _DIGEST_SIZE_BYTES
TAG_SIZE_BYTES = 16

_SECRETS_MAGIC = b"PSTS"
_SECRETS_VERSION = 1
_LENGTH = struct.Struct(">I")

Payload = bytes | bytearray | Secret

_log = logging.getLogger(__name__)


def _digest(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()[:_DIGEST_SIZE_BYTES]


def _scrypt(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    kdf = Scrypt(salt=salt, length=48, n=2**log2_n, r=r, p=p)
    return kdf.derive(passphrase.encode("utf-8"))


def seal_bytes(
    payload: Payload,
    passphrase: str,
    *,
    scrypt_n: int = DEFAULT_SCRYPT_N,
    rng: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Encrypt ``payload`` under ``passphrase`` into a self-describing sealed blob.

    Raises:
        CryptoError: ``scrypt_n`` is not a power of two in [2, 2^20].
    """
    log2_n = scrypt_n.bit_length() - 1
    if scrypt_n < 2 or scrypt_n != 1 << log2_n or log2_n > MAX_LOG2_N:
        raise CryptoError(f"scrypt n={scrypt_n} is not a power of two in [2, 2^{MAX_LOG2_N}]")
    plain = payload.reveal() if isinstance(payload, Secret) else payload
    salt, nonce = rng(16), rng(12)
    derived = _scrypt(passphrase, salt, log2_n, SCRYPT_R, SCRYPT_P)
    fields = _FIELDS.pack(
        MAGIC, VERSION, log2_n, SCRYPT_R, SCRYPT_P, salt, derived[32:], nonce, len(plain)
    )
    header = fields + _digest(fields)
    return header + AESGCM(derived[:32]).encrypt(nonce, bytes(plain), header)


def unseal_bytes(blob: bytes, passphrase: str, *, source: str = "<memory>") -> Secret:
    """Return the payload of a ``seal_bytes`` blob; ``source`` names it in errors.

    Raises:
        Truncated: shorter than its header says. UnsupportedVersion: unknown format version.
        Tampered: header or body modified. WrongPassphrase: the passphrase does not open it.
    """
    blob = bytes(blob)
    if len(blob) < len(MAGIC) + 1:
        raise Truncated(source)
    if blob[: len(MAGIC)] != MAGIC:
        raise Tampered(source)
    if blob[len(MAGIC)] != VERSION:
        raise UnsupportedVersion(source)
    if len(blob) < HEADER_SIZE_BYTES:
        raise Truncated(source)
    header = blob[:HEADER_SIZE_BYTES]
    if not hmac.compare_digest(_digest(header[: _FIELDS.size]), header[_FIELDS.size :]):
        raise Tampered(source)
    _, _, log2_n, r, p, salt, key_check, nonce, payload_bytes = _FIELDS.unpack(
        header[: _FIELDS.size]
    )
    expected_size = HEADER_SIZE_BYTES + payload_bytes + TAG_SIZE_BYTES
    if len(blob) < expected_size:
        raise Truncated(source)
    params_ok = 1 <= log2_n <= MAX_LOG2_N and 1 <= r <= 32 and 1 <= p <= 16
    if len(blob) > expected_size or not params_ok:
        raise Tampered(source)
    derived = bytearray(_scrypt(passphrase, salt, log2_n, r, p))
    try:
        if not hmac.compare_digest(derived[32:], key_check):
            raise WrongPassphrase(source)
        try:
            plain = AESGCM(bytes(derived[:32])).decrypt(nonce, blob[HEADER_SIZE_BYTES:], header)
        except InvalidTag as exc:
            raise Tampered(source) from exc
    finally:
        derived[:] = bytes(len(derived))
    return Secret(plain)


def _atomic_write(path: Path, data: bytes) -> None:
    # Write a temp file in the same directory, fsync it, rename over the target, fsync the
    # directory: a crash at any point leaves either the old or the new file, never neither.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_sealed(
    path: Path, payload: Payload, passphrase: str, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> None:
    """Seal ``payload`` into ``path`` atomically with mode 0600 (the old file survives a crash)."""
    blob = seal_bytes(payload, passphrase, scrypt_n=scrypt_n)
    _atomic_write(Path(path), blob)
    _log.debug("sealed %d bytes into %s (scrypt n=%d)", len(blob), path, scrypt_n)


def read_sealed(path: Path, passphrase: str) -> Secret:
    """Open the sealed file at ``path``.

    Raises:
        WrongPassphrase, Tampered, Truncated, UnsupportedVersion (facts: ``path``); OSError.
    """
    secret = unseal_bytes(Path(path).read_bytes(), passphrase, source=str(path))
    _log.debug("unsealed %s (%d payload bytes)", path, len(secret))
    return secret


@dataclass(frozen=True, slots=True)
class StationSecrets:
    """What a station keeps sealed: its DRBG working state, transport key and TLS key."""

    station_id: str
    drbg_state: Secret
    transport_key: Secret
    tls_key_pem: Secret

    def to_bytes(self) -> bytearray:
        """Serialise as magic, version, then four u32-length-prefixed fields (caller wipes)."""
        out = bytearray(_SECRETS_MAGIC + bytes([_SECRETS_VERSION]))
        fields: tuple[bytes | bytearray, ...] = (
            self.station_id.encode("utf-8"),
            self.drbg_state.reveal(),
            self.transport_key.reveal(),
            self.tls_key_pem.reveal(),
        )
        for field in fields:
            out += _LENGTH.pack(len(field))
            out += field
        return out

    @classmethod
    def from_bytes(cls, data: bytes | bytearray) -> StationSecrets:
        """Parse ``to_bytes`` output (the input is not wiped; the caller owns it).

        Raises:
            CryptoError: malformed or of an unknown version.
        """
        view = memoryview(data)
        if bytes(view[:4]) != _SECRETS_MAGIC or len(view) < 5:
            raise CryptoError("station secrets payload has a bad magic")
        if view[4] != _SECRETS_VERSION:
            raise CryptoError(f"station secrets version {view[4]} unsupported")
        fields: list[memoryview] = []
        offset = 5
        for _ in range(4):
            if offset + _LENGTH.size > len(view):
                raise CryptoError("station secrets payload is truncated")
            (size,) = _LENGTH.unpack_from(view, offset)
            offset += _LENGTH.size
            if offset + size > len(view):
                raise CryptoError("station secrets payload is truncated")
            fields.append(view[offset : offset + size])
            offset += size
        if offset != len(view):
            raise CryptoError("station secrets payload has trailing bytes")
        try:
            station_id = bytes(fields[0]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CryptoError("station secrets: station_id is not UTF-8") from exc
        return cls(station_id, Secret(fields[1]), Secret(fields[2]), Secret(fields[3]))

    def wipe(self) -> None:
        """Wipe the three secrets."""
        self.drbg_state.wipe()
        self.transport_key.wipe()
        self.tls_key_pem.wipe()


def save_station_secrets(
    path: Path, secrets: StationSecrets, passphrase: str, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> None:
    """Seal ``secrets`` into ``path`` (atomic, 0600)."""
    payload = secrets.to_bytes()
    try:
        write_sealed(path, payload, passphrase, scrypt_n=scrypt_n)
    finally:
        payload[:] = bytes(len(payload))


def load_station_secrets(path: Path, passphrase: str) -> StationSecrets:
    """Open the station secrets sealed at ``path``.

    Raises:
        WrongPassphrase, Tampered, Truncated, UnsupportedVersion; CryptoError if malformed.
    """
    with read_sealed(path, passphrase) as payload:
        return StationSecrets.from_bytes(payload.reveal())
