"""AES-256-GCM envelopes (version byte, 96-bit nonce, ciphertext+tag), HKDF-SHA256, key wrapping."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from provisioner.crypto.secret import Secret
from provisioner.errors import CryptoError, DecryptError

UPDATE_AUTH_INFO = b"provisioner/update-auth/v1"
FW_ENC_INFO = b"provisioner/fw-enc/v1"
WRAP_LABEL = b"provisioner/wrap/v1\x00"

VERSION = 1
KEY_SIZE_BYTES = 32
NONCE_SIZE_BYTES = 12
TAG_SIZE_BYTES = 16
OVERHEAD_BYTES = 1 + NONCE_SIZE_BYTES + TAG_SIZE_BYTES


class Aead(Protocol):
    """An AES-256-GCM cipher with ``AESGCM``'s interface: in-process, or a key on a token."""

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        """Return ciphertext ‖ tag."""
        ...

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        """Return the plaintext; raise ``cryptography.exceptions.InvalidTag`` on failure."""
        ...


def _aead(key: Secret | bytes | bytearray) -> AESGCM:
    raw = key.reveal() if isinstance(key, Secret) else key
    if len(raw) != KEY_SIZE_BYTES:
        raise CryptoError(f"envelope key is {len(raw)} bytes, expected {KEY_SIZE_BYTES}")
    return AESGCM(bytes(raw))


def encrypt(
    key: Secret | bytes | bytearray,
    plaintext: bytes | bytearray,
    aad: bytes,
    *,
    rng: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Encrypt ``plaintext`` under a 32-byte key; ``aad`` and the version byte are authenticated.

    Raises:
        CryptoError: the key is not 32 bytes.
    """
    return encrypt_with(_aead(key), plaintext, aad, rng=rng)


def encrypt_with(
    cipher: Aead, plaintext: bytes | bytearray, aad: bytes, *,
    rng: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Encrypt into the envelope format with any ``Aead`` (the one place the format is made)."""
    nonce = rng(NONCE_SIZE_BYTES)
    header = bytes([VERSION])
    return header + nonce + cipher.encrypt(nonce, bytes(plaintext), header + aad)


def decrypt(key: Secret | bytes | bytearray, blob: bytes, aad: bytes) -> bytearray:
    """Return the plaintext of an ``encrypt`` envelope (caller wipes it).

    Raises:
        DecryptError: wrong key, wrong ``aad``, modified, truncated or unknown version.
    """
    return decrypt_with(_aead(key), blob, aad)


def decrypt_with(cipher: Aead, blob: bytes, aad: bytes) -> bytearray:
    """Return the plaintext of an envelope under any ``Aead`` (caller wipes it).

    Raises:
        DecryptError: wrong key, wrong ``aad``, modified, truncated or unknown version.
    """
    if len(blob) < OVERHEAD_BYTES:
        raise DecryptError(f"envelope is {len(blob)} bytes, shorter than {OVERHEAD_BYTES}")
    if blob[0] != VERSION:
        raise DecryptError(f"envelope version {blob[0]} unsupported (expected {VERSION})")
    nonce = blob[1 : 1 + NONCE_SIZE_BYTES]
    try:
        plain = cipher.decrypt(nonce, blob[1 + NONCE_SIZE_BYTES :], blob[:1] + aad)
    except InvalidTag as exc:
        raise DecryptError("envelope authentication failed (wrong key, AAD or modified)") from exc
    return bytearray(plain)


def derive_key(
    key: Secret | bytes | bytearray, info: bytes, length: int = 32, salt: bytes | None = None
) -> Secret:
    """Derive a sub-key with HKDF-SHA256 (RFC 5869) for the purpose named by ``info``."""
    raw = key.reveal() if isinstance(key, Secret) else key
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info)
    return Secret(hkdf.derive(bytes(raw)))


def wrap(master_key: Secret | bytes | bytearray, plaintext: bytes | bytearray, aad: bytes) -> bytes:
    """Encrypt a secret under the site master key in a labelled envelope (for storage at rest)."""
    return wrap_with(_aead(master_key), plaintext, aad)


def unwrap(master_key: Secret | bytes | bytearray, blob: bytes, aad: bytes) -> Secret:
    """Return the secret inside a ``wrap`` envelope.

    Raises:
        DecryptError: wrong master key, wrong ``aad`` or a modified blob.
    """
    return unwrap_with(_aead(master_key), blob, aad)


def wrap_with(cipher: Aead, plaintext: bytes | bytearray, aad: bytes) -> bytes:
    """``wrap`` under any ``Aead`` (a master key on a token)."""
    return encrypt_with(cipher, plaintext, WRAP_LABEL + aad)


def unwrap_with(cipher: Aead, blob: bytes, aad: bytes) -> Secret:
    """``unwrap`` under any ``Aead``.

    Raises:
        DecryptError: wrong master key, wrong ``aad`` or a modified blob.
    """
    plain = decrypt_with(cipher, blob, WRAP_LABEL + aad)
    try:
        return Secret(plain)
    finally:
        plain[:] = bytes(len(plain))
