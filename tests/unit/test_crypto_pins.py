"""PIN hashes: self-describing scrypt strings, salted, verified, malformed ones refused."""

from __future__ import annotations

import pytest

from provisioner.crypto.pins import hash_pin, verify_pin
from provisioner.errors import CryptoError


def test_hash_and_verify() -> None:
    stored = hash_pin("4711", n=2**10)
    scheme, params, _salt, _digest = stored.split("$")
    assert (scheme, params) == ("scrypt", "n=1024,r=8,p=1")
    assert "4711" not in stored
    assert verify_pin("4711", stored)
    assert not verify_pin("4712", stored)
    assert not verify_pin("", stored)
    assert hash_pin("4711", n=2**10) != stored  # salted


def test_default_cost() -> None:
    stored = hash_pin("123456")
    assert stored.split("$")[1] == "n=16384,r=8,p=1"
    assert verify_pin("123456", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "bcrypt$n=1024,r=8,p=1$AAAA$AAAA",
        "scrypt$n=1024,r=8$AAAA$AAAA",
        "scrypt$n=1000,r=8,p=1$AAAA$AAAA",
        "scrypt$n=1024,r=8,p=1$AAAA$",
        "scrypt$n=1024,r=8,p=1$!!$AAAA",
        "scrypt$n=x,r=8,p=1$AAAA$AAAA",
    ],
)
def test_malformed_stored_hash(stored: str) -> None:
    with pytest.raises(CryptoError, match="stored PIN hash"):
        verify_pin("4711", stored)
