"""Audit chain throughput: build and verify rates against bare Ed25519 sign/verify in one run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from provisioner.audit.chain import AuditEntry, AuditEvent, build_entry, verify_chain
from provisioner.crypto.signing import SigningKey

ENTRIES = 2000
ROUNDS = 5


def _build(signer: SigningKey) -> list[AuditEntry]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[AuditEntry] = []
    for i in range(ENTRIES):
        out.append(build_entry(prev=out[-1] if out else None, time=start + timedelta(seconds=i),
                               actor="station:ST-1", event=AuditEvent.device_programmed,
                               data={"order_id": "O-1", "station_id": "ST-1", "device_id": i,
                                     "drbg_index": i, "chip_uid": f"{i:024x}"},
                               signer=signer))
    return out


def _median_s(action: Callable[[], object]) -> float:
    samples = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        action()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main() -> None:
    """Print median entries/s for build and verify and their ratio to bare Ed25519."""
    signer = SigningKey.generate()
    verify_key = signer.verify_key
    chain = _build(signer)
    digest = bytes(32)
    signature = signer.sign(digest)
    build_s = _median_s(lambda: _build(signer))
    verify_s = _median_s(lambda: verify_chain(chain, verify_key))
    sign_s = _median_s(lambda: [signer.sign(digest) for _ in range(ENTRIES)])

    def bare_verify() -> None:
        for _ in range(ENTRIES):
            verify_key.verify(digest, signature)

    bare_verify_s = _median_s(bare_verify)
    print(f"{ENTRIES} entries, median of {ROUNDS} rounds")
    print(f"build_entry : {ENTRIES / build_s:10.0f} entries/s "
          f"({build_s / sign_s:.2f}x bare Ed25519 sign time)")
    print(f"verify_chain: {ENTRIES / verify_s:10.0f} entries/s "
          f"({verify_s / bare_verify_s:.2f}x bare Ed25519 verify time)")


if __name__ == "__main__":
    main()
