"""Benchmark key derivation (KeyStream vs a plain hashlib HMAC_DRBG peer) and sealed-file unlock."""

from __future__ import annotations

import hashlib
import hmac
import statistics
import tempfile
import time
from pathlib import Path

from provisioner.crypto.keystream import KeyStream
from provisioner.crypto.sealed import read_sealed, write_sealed
from provisioner.crypto.secret import Secret

KEYS_PER_RUN = 50_000
RUNS = 7
SEED = Secret(bytes(range(32)))
STATION = "bench-station"


class HashlibDrbg:
    """The peer: the same SP 800-90A HMAC_DRBG written plainly on the standard library's hmac."""

    def __init__(self, entropy: bytes, nonce: bytes, personalization: bytes) -> None:
        self.key, self.value = b"\x00" * 32, b"\x01" * 32
        self._update(entropy + nonce + personalization)

    def _update(self, provided: bytes) -> None:
        self.key = hmac.new(self.key, self.value + b"\x00" + provided, hashlib.sha256).digest()
        self.value = hmac.new(self.key, self.value, hashlib.sha256).digest()
        if provided:
            self.key = hmac.new(self.key, self.value + b"\x01" + provided, hashlib.sha256).digest()
            self.value = hmac.new(self.key, self.value, hashlib.sha256).digest()

    def generate32(self) -> bytes:
        self.value = hmac.new(self.key, self.value, hashlib.sha256).digest()
        out = self.value
        self._update(b"")
        return out


def _peer() -> HashlibDrbg:
    encoded = STATION.encode()
    nonce = hashlib.sha256(b"provisioner/keystream/nonce/v1\x00" + encoded).digest()[:16]
    return HashlibDrbg(bytes(SEED.reveal()), nonce, b"provisioner/keystream/v1\x00" + encoded)


def _keys_per_s_keystream() -> float:
    stream = KeyStream.from_seed(SEED, STATION)
    start = time.perf_counter()
    for _ in range(KEYS_PER_RUN):
        stream.next_key(32)
    return KEYS_PER_RUN / (time.perf_counter() - start)


def _keys_per_s_peer() -> float:
    peer = _peer()
    start = time.perf_counter()
    for _ in range(KEYS_PER_RUN):
        peer.generate32()
    return KEYS_PER_RUN / (time.perf_counter() - start)


def _fast_forward_keys_per_s() -> float:
    stream = KeyStream.from_seed(SEED, STATION)
    start = time.perf_counter()
    stream.advance_to(KEYS_PER_RUN)
    return KEYS_PER_RUN / (time.perf_counter() - start)


def _unlock_s(path: Path) -> float:
    start = time.perf_counter()
    read_sealed(path, "benchmark passphrase").wipe()
    return time.perf_counter() - start


def main() -> None:
    """Print medians over several runs and the ratios against the peer."""
    stream, peer = KeyStream.from_seed(SEED, STATION), _peer()
    for _ in range(100):  # the peer must compute the very same keys
        assert stream.next_key(32)[1] == peer.generate32()
    ours = statistics.median(_keys_per_s_keystream() for _ in range(RUNS))
    theirs = statistics.median(_keys_per_s_peer() for _ in range(RUNS))
    skip = statistics.median(_fast_forward_keys_per_s() for _ in range(RUNS))
    print(f"KeyStream.next_key (cryptography HMAC): {ours:12,.0f} keys/s (median of {RUNS})")
    print(f"hashlib-hmac HMAC_DRBG peer:            {theirs:12,.0f} keys/s")
    print(f"KeyStream.advance_to (fast-forward):    {skip:12,.0f} indexes/s")
    print(f"ratio KeyStream / peer: {ours / theirs:.2f}")
    print(f"ratio KeyStream / 50,000 keys/s target: {ours / 50_000:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "station.sealed"
        write_sealed(path, bytes(4096), "benchmark passphrase")
        unlock = statistics.median(_unlock_s(path) for _ in range(RUNS))
    print(f"sealed-file unlock (scrypt n=2^15, r=8, p=1): {unlock * 1000:.1f} ms median "
          f"(budget 500 ms, ratio {unlock / 0.5:.2f})")


if __name__ == "__main__":
    main()
