"""Operator PIN hashing with scrypt in a self-describing string, verified in constant time."""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Callable

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from provisioner.errors import CryptoError

SCHEME = "scrypt"
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
_SALT_SIZE_BYTES = 16
_HASH_SIZE_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return Scrypt(salt=salt, length=length, n=n, r=r, p=p).derive(pin.encode("utf-8"))


def hash_pin(
    pin: str, *, n: int = DEFAULT_N, rng: Callable[[int], bytes] = os.urandom
) -> str:
    """Return ``scrypt$n=…,r=…,p=…$<salt b64>$<hash b64>`` for ``pin``."""
    salt = rng(_SALT_SIZE_BYTES)
    digest = _scrypt(pin, salt, n, DEFAULT_R, DEFAULT_P, _HASH_SIZE_BYTES)
    return f"{SCHEME}$n={n},r={DEFAULT_R},p={DEFAULT_P}${_b64(salt)}${_b64(digest)}"


def verify_pin(pin: str, stored: str) -> bool:
    """Return whether ``pin`` matches a ``hash_pin`` string (constant-time comparison).

    Raises:
        CryptoError: ``stored`` is not a ``hash_pin`` string.
    """
    try:
        scheme, params, salt_b64, hash_b64 = stored.split("$")
        fields = dict(item.split("=", 1) for item in params.split(","))
        n, r, p = int(fields["n"]), int(fields["r"]), int(fields["p"])
        salt, expected = _unb64(salt_b64), _unb64(hash_b64)
    except (ValueError, KeyError) as exc:
        raise CryptoError("stored PIN hash is malformed") from exc
    if scheme != SCHEME or set(fields) != {"n", "r", "p"} or not expected:
        raise CryptoError("stored PIN hash is malformed")
    if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise CryptoError("stored PIN hash has out-of-range scrypt parameters")
    return hmac.compare_digest(_scrypt(pin, salt, n, r, p, len(expected)), expected)
