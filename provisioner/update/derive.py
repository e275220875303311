"""Keys derived from the device key and the MACs they make (spec §2): HKDF/HMAC-SHA-512."""

from __future__ import annotations

import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from provisioner.crypto.secret import Secret

SALT = b"provisioner/update/v1"
REQUEST_MAC_LABEL = b"request-mac"
RESULT_MAC_LABEL = b"result-mac"
PACKAGE_KEY_LABEL = b"package-key"


def _hkdf(device_key: Secret, info: bytes, length: int) -> Secret:
    kdf = HKDF(algorithm=hashes.SHA512(), length=length, salt=SALT, info=info)
    return Secret(kdf.derive(bytes(device_key.reveal())))


def request_mac_key(device_key: Secret, device_id: int) -> Secret:
    """K_req: 64 bytes for the request MAC."""
    return _hkdf(device_key, REQUEST_MAC_LABEL + struct.pack("<I", device_id), 64)


def result_mac_key(device_key: Secret, device_id: int) -> Secret:
    """K_res: 64 bytes for the result report MAC."""
    return _hkdf(device_key, RESULT_MAC_LABEL + struct.pack("<I", device_id), 64)


def package_key(device_key: Secret, device_id: int, version: int, delivery_id: int) -> Secret:
    """K_pkg: 32 bytes, unique per (device, release, delivery)."""
    info = PACKAGE_KEY_LABEL + struct.pack("<III", device_id, version, delivery_id)
    return _hkdf(device_key, info, 32)


def mac(key: Secret, data: bytes) -> bytes:
    """HMAC-SHA-512 of ``data`` (64 bytes); ``key`` is wiped afterwards."""
    with key:
        return hmac.new(bytes(key.reveal()), data, "sha512").digest()


def mac_matches(key: Secret, data: bytes, tag: bytes) -> bool:
    """Whether ``tag`` is the MAC of ``data`` (constant-time compare; ``key`` wiped)."""
    return hmac.compare_digest(mac(key, data), bytes(tag))
