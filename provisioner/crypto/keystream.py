"""Per-station device key stream: one HMAC_DRBG generate per DRBG index, forward only.

Construction (site and station both call this module, so they agree by construction):

* ``seed`` (32 bytes, kept only by the site) is the SP 800-90A entropy input.
* nonce = SHA-256(b"provisioner/keystream/nonce/v1" || 0x00 || UTF-8(station_id))[:16]
* personalization = b"provisioner/keystream/v1" || 0x00 || UTF-8(station_id)
* HMAC_DRBG(SHA-256).instantiate(seed, nonce, personalization); then for index 0, 1, 2, …
  one ``generate(32)`` without additional input; the key of that index is the first
  ``key_size_bytes`` (16 or 32) of the 32-byte output.

The exported state is the DRBG working state (K, V, reseed_counter) plus ``next_index``; it
holds no seed, and HMAC_DRBG cannot be run backwards, so it reveals no earlier key.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes

from provisioner.crypto.drbg import STATE_SIZE_BYTES, HmacDrbg
from provisioner.crypto.secret import Secret
from provisioner.errors import DrbgError, IndexBehind

SEED_SIZE_BYTES = 32
KEY_SIZES_BYTES = (16, 32)
_NONCE_LABEL = b"provisioner/keystream/nonce/v1\x00"
_PERSONALIZATION_LABEL = b"provisioner/keystream/v1\x00"
_MAGIC = b"PKST"
_VERSION = 1
_HEADER = struct.Struct(">4sBQ")
_log = logging.getLogger(__name__)


def generate_seed(rng: Callable[[int], bytes] = os.urandom) -> Secret:
    """Return a fresh 32-byte station seed drawn from ``rng``."""
    return Secret(rng(SEED_SIZE_BYTES))


def _station_inputs(station_id: str) -> tuple[bytes, bytes]:
    encoded = station_id.encode("utf-8")
    digest = hashes.Hash(hashes.SHA256())
    digest.update(_NONCE_LABEL + encoded)
    return digest.finalize()[:16], _PERSONALIZATION_LABEL + encoded


class KeyStream:
    """Yield ``(drbg_index, key)`` in order; fast-forward; never go back."""

    __slots__ = ("_drbg", "next_index")

    def __init__(self, drbg: HmacDrbg, next_index: int) -> None:
        self._drbg = drbg
        self.next_index = next_index

    def __repr__(self) -> str:
        return f"KeyStream(next_index={self.next_index})"

    @classmethod
    def from_seed(cls, seed: Secret, station_id: str) -> KeyStream:
        """Start the stream of ``station_id`` at index 0 from its 32-byte seed.

        Raises:
            DrbgError: the seed is not 32 bytes.
        """
        if len(seed) != SEED_SIZE_BYTES:
            raise DrbgError(f"seed is {len(seed)} bytes, expected {SEED_SIZE_BYTES}")
        nonce, personalization = _station_inputs(station_id)
        return cls(HmacDrbg.instantiate(seed.reveal(), nonce, personalization), 0)

    @classmethod
    def from_state(cls, blob: Secret | bytes | bytearray) -> KeyStream:
        """Resume a stream from ``export_state`` output.

        Raises:
            DrbgError: the blob is malformed or of an unknown version.
        """
        data = bytes(blob.reveal() if isinstance(blob, Secret) else blob)
        if len(data) != _HEADER.size + STATE_SIZE_BYTES:
            raise DrbgError(
                f"key stream state is {len(data)} bytes, expected {_HEADER.size + STATE_SIZE_BYTES}"
            )
        magic, version, next_index = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise DrbgError("not a key stream state blob (bad magic)")
        if version != _VERSION:
            raise DrbgError(f"key stream state version {version} unsupported (expected {_VERSION})")
        return cls(HmacDrbg.import_state(data[_HEADER.size :]), next_index)

    def export_state(self) -> Secret:
        """Return the working state and ``next_index`` as an opaque versioned blob (no seed)."""
        with self._drbg.export_state() as drbg_state:
            return Secret(_HEADER.pack(_MAGIC, _VERSION, self.next_index) + drbg_state.reveal())

    def advance_to(self, index: int) -> None:
        """Skip forward so that ``next_index == index``; the skipped keys are discarded.

        Raises:
            IndexBehind: ``index`` is below ``next_index``.
        """
        if index < self.next_index:
            raise IndexBehind(index, self.next_index)
        start = self.next_index
        generate_block = self._drbg.generate_block
        done = 0
        try:
            for _ in range(index - start):
                generate_block()
                done += 1
        finally:  # on ReseedRequired the index still matches the DRBG's position
            self.next_index = start + done
        if done:
            _log.debug("key stream advanced %d -> %d", start, index)

    def next_key(self, key_size_bytes: int) -> tuple[int, Secret]:
        """Return ``(drbg_index, key)`` for the next index and advance by one.

        Raises:
            DrbgError: ``key_size_bytes`` is not 16 or 32. ReseedRequired: stream exhausted.
        """
        if key_size_bytes not in KEY_SIZES_BYTES:
            raise DrbgError(f"key size {key_size_bytes} bytes unsupported (16 or 32)")
        block = self._drbg.generate_block()
        index = self.next_index
        self.next_index = index + 1
        key = Secret(block[:key_size_bytes])
        return index, key

    def key_at(self, index: int, key_size_bytes: int) -> Secret:
        """Return the key of ``index`` (advance_to then next_key).

        Raises:
            IndexBehind: ``index`` is below ``next_index``.
        """
        self.advance_to(index)
        return self.next_key(key_size_bytes)[1]

    def clone(self) -> KeyStream:
        """Return an independent stream at the same position."""
        return KeyStream(self._drbg.copy(), self.next_index)
