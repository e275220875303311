"""The committed field-update vectors are what the site code builds, and check out independently."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from update_vectors import VECTORS_PATH, render

from provisioner.update.codec import Manifest, ResultReport, UpdateRequest


def _hkdf_sha512(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out with HMAC, independent of the library's HKDF class."""
    prk = hmac.new(salt, ikm, "sha512").digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), "sha512").digest()
        out += block
        counter += 1
    return out[:length]


def test_committed_vectors_are_regenerated_identically() -> None:
    assert VECTORS_PATH.read_text(encoding="ascii") == render()


def test_vectors_verify_from_first_principles() -> None:
    doc = json.loads(VECTORS_PATH.read_text(encoding="ascii"))
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(doc["manufacturer"]["public_key"]))
    salt = b"provisioner/update/v1"
    for case in doc["cases"]:
        inputs = case["inputs"]
        key, device_id = bytes.fromhex(inputs["device_key"]), inputs["device_id"]
        k_req = _hkdf_sha512(key, salt, b"request-mac" + struct.pack("<I", device_id), 64)
        assert k_req.hex() == case["k_req"]
        request = bytes.fromhex(case["request"])
        assert request[:5] == b"PVUQ\x01"
        assert len(request) == 40
        assert UpdateRequest.parse(request).nonce.hex() == inputs["nonce"]
        assert hmac.new(k_req, request, "sha512").hexdigest() == case["request_mac"]

        manifest_bytes = bytes.fromhex(case["manifest"])
        public.verify(bytes.fromhex(case["signature"]), manifest_bytes)
        manifest = Manifest.parse(manifest_bytes)
        assert (manifest.device_id, manifest.delivery_id) == (device_id, inputs["delivery_id"])
        assert manifest.request_nonce.hex() == inputs["nonce"]
        release = inputs["release"]
        k_pkg = _hkdf_sha512(key, salt, b"package-key" + struct.pack(
            "<III", device_id, release["version"], inputs["delivery_id"]), 32)
        assert k_pkg.hex() == case["k_pkg"]
        plain = ChaCha20Poly1305(k_pkg).decrypt(bytes.fromhex(inputs["package_nonce"]),
                                                bytes.fromhex(case["ciphertext"]), manifest_bytes)
        assert plain.hex() == inputs["image"]
        assert hashlib.sha512(plain).digest() == manifest.image_digest

        k_res = _hkdf_sha512(key, salt, b"result-mac" + struct.pack("<I", device_id), 64)
        result = bytes.fromhex(case["result"])
        assert ResultReport.parse(result).outcome.value == inputs["result"]["outcome"]
        assert hmac.new(k_res, result, "sha512").hexdigest() == case["result_mac"]
