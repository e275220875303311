"""Envelopes: AES-256-GCM format, AAD binding, HKDF sub-keys, wrap/unwrap under a master key."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.crypto import envelope
from provisioner.crypto.secret import Secret
from provisioner.errors import CryptoError, DecryptError

KEY = Secret(bytes(range(32)))


def test_format_is_version_nonce_ciphertext_tag() -> None:
    blob = envelope.encrypt(KEY, b"hello", b"aad", rng=lambda n: b"\xaa" * n)
    assert blob[0] == envelope.VERSION
    assert blob[1:13] == b"\xaa" * 12
    assert len(blob) == 1 + 12 + 5 + 16


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=40))
def test_round_trip(plaintext: bytes, aad: bytes) -> None:
    blob = envelope.encrypt(KEY, bytearray(plaintext), aad)
    assert envelope.decrypt(bytes(KEY.reveal()), blob, aad) == plaintext


def test_nonces_are_fresh() -> None:
    assert envelope.encrypt(KEY, b"x", b"") != envelope.encrypt(KEY, b"x", b"")


def test_every_kind_of_damage_fails() -> None:
    blob = envelope.encrypt(KEY, b"secret payload", b"grant-1")
    with pytest.raises(DecryptError, match="authentication"):
        envelope.decrypt(KEY, blob, b"grant-2")
    with pytest.raises(DecryptError, match="authentication"):
        envelope.decrypt(Secret(bytes(32)), blob, b"grant-1")
    for position in range(1, len(blob)):
        damaged = bytearray(blob)
        damaged[position] ^= 0x10
        with pytest.raises(DecryptError):
            envelope.decrypt(KEY, bytes(damaged), b"grant-1")
    with pytest.raises(DecryptError, match="version 2"):
        envelope.decrypt(KEY, b"\x02" + blob[1:], b"grant-1")
    with pytest.raises(DecryptError, match="shorter"):
        envelope.decrypt(KEY, blob[:28], b"grant-1")


def test_key_must_be_32_bytes() -> None:
    with pytest.raises(CryptoError, match="16 bytes"):
        envelope.encrypt(bytes(16), b"x", b"")


def test_derive_key_is_rfc5869_hkdf_sha256() -> None:
    expected = HKDF(hashes.SHA256(), 32, salt=b"s", info=envelope.FW_ENC_INFO).derive(
        bytes(range(32))
    )
    assert envelope.derive_key(KEY, envelope.FW_ENC_INFO, salt=b"s") == expected
    update = envelope.derive_key(KEY, envelope.UPDATE_AUTH_INFO)
    fw = envelope.derive_key(KEY, envelope.FW_ENC_INFO)
    assert update != fw
    assert len(envelope.derive_key(KEY, b"x", length=16)) == 16


def test_wrap_unwrap_is_labelled() -> None:
    blob = envelope.wrap(KEY, b"station seed", b"station:st-1")
    assert envelope.unwrap(KEY, blob, b"station:st-1") == b"station seed"
    with pytest.raises(DecryptError):
        envelope.unwrap(KEY, blob, b"station:st-2")
    with pytest.raises(DecryptError):  # a wrapped blob is not a plain envelope with the same AAD
        envelope.decrypt(KEY, blob, b"station:st-1")
