"""Build the field-update test vectors with the site's own code (tests/data/updates/vectors.json).

Run `python tests/unit/update_vectors.py` to rewrite the file; tests/unit/test_update_vectors.py
regenerates them in memory and compares.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provisioner.crypto.secret import Secret
from provisioner.crypto.signing import SigningKey
from provisioner.site.updates.packaging import ReleaseTerms, build_package
from provisioner.update import derive
from provisioner.update.codec import (
    MANIFEST_SIZE,
    SIGNATURE_SIZE,
    Outcome,
    Reason,
    ResultReport,
    UpdateRequest,
)

VECTORS_PATH = Path(__file__).parents[1] / "data" / "updates" / "vectors.json"
MANUFACTURER_SEED = bytes(range(0x40, 0x60))
DEVICE_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
DEVICE_ID = 0x00001234
IMAGE = b"".join(hashlib.sha256(f"vector image {i}".encode()).digest() for i in range(10))[:300]


def _case(device_key: bytes, device_id: int, current: int, counter: int, nonce: bytes,
          terms: ReleaseTerms, delivery_id: int, package_nonce: bytes, issued_at: int,
          outcome: Outcome, reason: Reason) -> dict[str, object]:
    signer = SigningKey(Ed25519PrivateKey.from_private_bytes(MANUFACTURER_SEED))
    key = Secret(device_key)
    request = UpdateRequest(device_id, current, counter, nonce)
    package = build_package(signer, key, request, terms, IMAGE, delivery_id=delivery_id,
                            package_nonce=package_nonce, issued_at=issued_at)
    report = ResultReport(outcome, reason, device_id, delivery_id,
                          terms.version if outcome == Outcome.installed else current,
                          max(counter, terms.security_counter)
                          if outcome == Outcome.installed else counter)
    with (derive.request_mac_key(key, device_id) as k_req,
          derive.result_mac_key(key, device_id) as k_res,
          derive.package_key(key, device_id, terms.version, delivery_id) as k_pkg):
        k_req_hex, k_res_hex, k_pkg_hex = (bytes(k.reveal()).hex() for k in (k_req, k_res, k_pkg))
    return {
        "inputs": {
            "device_key": device_key.hex(), "device_id": device_id,
            "current_version": current, "security_counter": counter, "nonce": nonce.hex(),
            "release": {"version": terms.version, "requires_version": terms.requires_version,
                        "security_counter": terms.security_counter},
            "image": IMAGE.hex(), "delivery_id": delivery_id,
            "package_nonce": package_nonce.hex(), "issued_at": issued_at,
            "result": {"outcome": outcome.value, "reason": reason.name},
        },
        "k_req": k_req_hex,
        "request": request.to_bytes().hex(),
        "request_mac": derive.mac(Secret(bytes.fromhex(k_req_hex)), request.to_bytes()).hex(),
        "k_pkg": k_pkg_hex,
        "manifest": package[:MANIFEST_SIZE].hex(),
        "signature": package[MANIFEST_SIZE:MANIFEST_SIZE + SIGNATURE_SIZE].hex(),
        "ciphertext": package[MANIFEST_SIZE + SIGNATURE_SIZE:].hex(),
        "k_res": k_res_hex,
        "result": report.to_bytes().hex(),
        "result_mac": derive.mac(Secret(bytes.fromhex(k_res_hex)), report.to_bytes()).hex(),
    }


def build_vectors() -> dict[str, object]:
    """Return the vectors document."""
    signer = SigningKey(Ed25519PrivateKey.from_private_bytes(MANUFACTURER_SEED))
    return {
        "spec": "docs/updates-protocol.md v1",
        "manufacturer": {"private_seed": MANUFACTURER_SEED.hex(),
                         "public_key": signer.verify_key.raw.hex(), "key_id": signer.key_id},
        "cases": [
            _case(DEVICE_KEY, DEVICE_ID, 0, 0, bytes(range(16)),
                  ReleaseTerms(0x00010000, 0, 0), 1, bytes(range(0xA0, 0xAC)), 1_780_000_000,
                  Outcome.installed, Reason.none),
            _case(bytes.fromhex("ffeeddccbbaa99887766554433221100"), 0x7FFFFFFE, 0x00010000,
                  0x00010000, bytes(range(0x10, 0x20)), ReleaseTerms(0x00010203, 0x00010000,
                  0x00010200), 0xDEADBEEF, bytes(12), 1_780_000_123,
                  Outcome.rolled_back, Reason.self_test_failed),
        ],
    }


def render() -> str:
    """Return the vectors as the file's text."""
    return json.dumps(build_vectors(), indent=2) + "\n"


if __name__ == "__main__":
    VECTORS_PATH.write_text(render(), encoding="ascii")
    sys.stdout.write(f"wrote {VECTORS_PATH}\n")
