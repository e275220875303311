"""Ed25519 keys: sign/verify, key ids, PEM load/save, wrong-key and wrong-type errors."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provisioner.crypto.signing import SigningKey, VerifyKey
from provisioner.errors import BadSignature, CryptoError


def test_sign_verify_and_key_id() -> None:
    key = SigningKey.generate()
    signature = key.sign(b"manifest")
    assert len(signature) == 64
    key.verify_key.verify(b"manifest", signature)
    assert key.key_id == hashlib.sha256(key.verify_key.raw).digest()[:8].hex()
    assert len(key.key_id) == 16
    with pytest.raises(BadSignature) as info:
        key.verify_key.verify(b"manifest!", signature, what="audit entry 3")
    assert info.value.key_id == key.key_id
    assert "audit entry 3" in str(info.value)
    with pytest.raises(BadSignature):
        SigningKey.generate().verify_key.verify(b"manifest", signature)


def test_pem_round_trips() -> None:
    key = SigningKey.generate()
    with key.to_pem() as pem:
        assert pem.reveal().startswith(b"-----BEGIN PRIVATE KEY-----")
        again = SigningKey.from_pem(pem.reveal())
    assert again.key_id == key.key_id
    public = VerifyKey.from_pem(key.verify_key.to_pem())
    assert public == key.verify_key
    assert VerifyKey.from_raw(key.verify_key.raw) == public
    assert hash(public) == hash(key.verify_key)
    public.verify(b"x", again.sign(b"x"))


def test_wrong_inputs() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CryptoError, match="expected Ed25519"):
        SigningKey.from_pem(other_pem)
    with pytest.raises(CryptoError, match="expected Ed25519"):
        VerifyKey.from_pem(
            other.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    with pytest.raises(CryptoError, match="PEM"):
        SigningKey.from_pem(b"garbage")
    with pytest.raises(CryptoError, match="PEM"):
        VerifyKey.from_pem(b"garbage")
    with pytest.raises(CryptoError, match="31 bytes"):
        VerifyKey.from_raw(bytes(31))


def test_reprs_show_only_the_key_id() -> None:
    key = SigningKey.generate()
    assert repr(key) == f"SigningKey(key_id={key.key_id})"
    assert repr(key.verify_key) == f"VerifyKey(key_id={key.key_id})"
