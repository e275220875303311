"""The field-update protocol v1 written from its spec with ``cryptography`` (test ground truth).

``test_bootloader_update.py`` first checks these helpers reproduce the site's test vectors
(``tests/data/updates/vectors.json``), then uses them to talk to the C bootloader.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SALT = b"provisioner/update/v1"
MANIFEST = struct.Struct("<4sB3xIIIIII16s12s4x64sQ8s")
REQUEST = struct.Struct("<4sB3xIII4x16s")
RESULT = struct.Struct("<4sBBBxIIII")
REASONS = ("none", "malformed", "wrong_device", "bad_signature", "decrypt_failed", "bad_digest",
           "downgrade", "predecessor_required", "too_large", "stale_package", "write_failed",
           "self_test_failed", "interrupted", "rollback_counter")


def hkdf(device_key: bytes, label: bytes, fields: bytes, size: int) -> bytes:
    return HKDF(hashes.SHA512(), size, salt=SALT, info=label + fields).derive(device_key)


def request_mac_key(device_key: bytes, device_id: int) -> bytes:
    return hkdf(device_key, b"request-mac", struct.pack("<I", device_id), 64)


def result_mac_key(device_key: bytes, device_id: int) -> bytes:
    return hkdf(device_key, b"result-mac", struct.pack("<I", device_id), 64)


def package_key(device_key: bytes, device_id: int, version: int, delivery_id: int) -> bytes:
    fields = struct.pack("<III", device_id, version, delivery_id)
    return hkdf(device_key, b"package-key", fields, 32)


def mac(key: bytes, body: bytes) -> bytes:
    h = hmac.HMAC(key, hashes.SHA512())
    h.update(body)
    return h.finalize()


def key_id(public_key: bytes) -> bytes:
    return hashlib.sha256(public_key).digest()[:8]


def manifest(*, device_id: int, delivery_id: int, version: int, requires_version: int,
             security_counter: int, image: bytes, request_nonce: bytes, package_nonce: bytes,
             issued_at: int, signer_public: bytes) -> bytes:
    return MANIFEST.pack(b"PVUM", 1, device_id, delivery_id, version, requires_version,
                         security_counter, len(image), request_nonce, package_nonce,
                         hashlib.sha512(image).digest(), issued_at, key_id(signer_public))


def seal(signer: Ed25519PrivateKey, header: bytes, image: bytes, device_key: bytes) -> bytes:
    """manifest || signature || ChaCha20-Poly1305(K_pkg, package_nonce, image, AAD=manifest)."""
    device_id, delivery_id, version = struct.unpack_from("<III", header, 8)
    key = package_key(device_key, device_id, version, delivery_id)
    nonce = header[48:60]
    return header + signer.sign(header) + ChaCha20Poly1305(key).encrypt(nonce, image, header)


def frame(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack("<BI", kind, len(payload)) + payload
