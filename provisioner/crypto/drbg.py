"""HMAC_DRBG with SHA-256 (NIST SP 800-90A Rev. 1 §10.1.2), built on cryptography's HMAC."""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from provisioner.crypto.secret import Secret
from provisioner.errors import DrbgError, ReseedRequired

OUTLEN_BYTES = 32
SECURITY_STRENGTH_BYTES = 32
RESEED_INTERVAL = 2**48  # SP 800-90A Table 2: reseed_interval <= 2^48
MAX_REQUEST_BYTES = 2**16  # Table 2: max_number_of_bits_per_request = 2^19 bits

_STATE_MAGIC = b"PDRB"
_STATE_VERSION = 1
_STATE = struct.Struct(">4sB32s32sQ")
STATE_SIZE_BYTES = _STATE.size

_SHA256 = hashes.SHA256()


def _check_entropy(entropy: bytes | bytearray) -> None:
    if len(entropy) < SECURITY_STRENGTH_BYTES:
        raise DrbgError(
            f"entropy input is {len(entropy)} bytes, at least {SECURITY_STRENGTH_BYTES} needed"
        )


class HmacDrbg:
    """Deterministic random bit generator; holds the working state (K, V, reseed_counter)."""

    __slots__ = ("_key", "_keyed", "_value", "reseed_counter")

    def __init__(self, key: bytes, value: bytes, reseed_counter: int) -> None:
        self._set_key(key)
        self._value = value
        self.reseed_counter = reseed_counter

    def _set_key(self, key: bytes) -> None:
        # Keep one pristine HMAC keyed with K; copying it is cheaper than re-keying per call.
        self._key = key
        self._keyed = HMAC(key, _SHA256)

    def _mac(self, data: bytes) -> bytes:
        h = self._keyed.copy()
        h.update(data)
        return h.finalize()

    def __repr__(self) -> str:
        return f"HmacDrbg(reseed_counter={self.reseed_counter})"

    @classmethod
    def instantiate(
        cls, entropy: bytes | bytearray, nonce: bytes | bytearray, personalization: bytes = b""
    ) -> HmacDrbg:
        """Instantiate from entropy, nonce and personalization string (§10.1.2.3).

        Raises:
            DrbgError: entropy is shorter than the 32-byte security strength.
        """
        _check_entropy(entropy)
        drbg = cls(b"\x00" * OUTLEN_BYTES, b"\x01" * OUTLEN_BYTES, 1)
        drbg._update(bytes(entropy) + bytes(nonce) + bytes(personalization))
        return drbg

    def _update(self, provided: bytes) -> None:
        # §10.1.2.2 HMAC_DRBG_Update
        self._set_key(self._mac(self._value + b"\x00" + provided))
        self._value = self._mac(self._value)
        if provided:
            self._set_key(self._mac(self._value + b"\x01" + provided))
            self._value = self._mac(self._value)

    def reseed(self, entropy: bytes | bytearray, additional_input: bytes = b"") -> None:
        """Mix fresh entropy into the state and reset the reseed counter (§10.1.2.4).

        Raises:
            DrbgError: entropy is shorter than the 32-byte security strength.
        """
        _check_entropy(entropy)
        self._update(bytes(entropy) + bytes(additional_input))
        self.reseed_counter = 1

    def generate(self, num_bytes: int, additional_input: bytes = b"") -> bytearray:
        """Return ``num_bytes`` pseudorandom bytes and advance the state (§10.1.2.5).

        Raises:
            ReseedRequired: the reseed counter passed 2^48.
            DrbgError: more than 65,536 bytes requested.
        """
        if not 0 <= num_bytes <= MAX_REQUEST_BYTES:
            raise DrbgError(f"request of {num_bytes} bytes outside [0, {MAX_REQUEST_BYTES}]")
        if num_bytes == OUTLEN_BYTES and not additional_input:
            return bytearray(self.generate_block())
        self._check_counter()
        provided = bytes(additional_input)
        if provided:
            self._update(provided)
        out = bytearray()
        while len(out) < num_bytes:
            self._value = self._mac(self._value)
            out += self._value
        del out[num_bytes:]
        self._update(provided)
        self.reseed_counter += 1
        return out

    def generate_block(self) -> bytes:
        """Return one 32-byte output block (generate(32) without additional input), fast path.

        Raises:
            ReseedRequired: the reseed counter passed 2^48.
        """
        self._check_counter()
        keyed = self._keyed
        h = keyed.copy()
        h.update(self._value)
        block = h.finalize()
        keyed.update(block + b"\x00")  # the pristine object is replaced just below
        key = keyed.finalize()
        fresh = HMAC(key, _SHA256)
        h = fresh.copy()
        h.update(block)
        self._key, self._keyed, self._value = key, fresh, h.finalize()
        self.reseed_counter += 1
        return block

    def _check_counter(self) -> None:
        if self.reseed_counter > RESEED_INTERVAL:
            raise ReseedRequired(f"reseed counter {self.reseed_counter} exceeds 2^48")

    def export_state(self) -> Secret:
        """Return the working state as an opaque versioned blob (magic, version, K, V, counter)."""
        return Secret(
            _STATE.pack(_STATE_MAGIC, _STATE_VERSION, self._key, self._value, self.reseed_counter)
        )

    @classmethod
    def import_state(cls, blob: Secret | bytes | bytearray) -> HmacDrbg:
        """Rebuild a DRBG from ``export_state`` output.

        Raises:
            DrbgError: the blob is not a DRBG state of a known version.
        """
        data = blob.reveal() if isinstance(blob, Secret) else blob
        if len(data) != _STATE.size:
            raise DrbgError(f"DRBG state is {len(data)} bytes, expected {_STATE.size}")
        magic, version, key, value, counter = _STATE.unpack(bytes(data))
        if magic != _STATE_MAGIC:
            raise DrbgError("not a DRBG state blob (bad magic)")
        if version != _STATE_VERSION:
            raise DrbgError(f"DRBG state version {version} unsupported (expected {_STATE_VERSION})")
        if not 1 <= counter <= RESEED_INTERVAL + 1:
            raise DrbgError(f"DRBG state reseed counter {counter} out of range")
        return cls(key, value, counter)

    def copy(self) -> HmacDrbg:
        """Return an independent DRBG with the same working state."""
        return HmacDrbg(self._key, self._value, self.reseed_counter)
