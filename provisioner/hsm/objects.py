"""Key objects on a token: find, generate, import, check they cannot leave, and use them.

Every private or secret key is created with CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and
CKA_EXTRACTABLE=false, so C_GetAttributeValue(CKA_VALUE) and C_WrapKey both refuse it.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

import pkcs11
from asn1crypto.core import OctetString
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, GCMParams, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11e

from provisioner.crypto.secret import Secret
from provisioner.hsm.errors import TokenKeyMissing, TokenKeyUnsafe
from provisioner.hsm.token import Token

ED25519_PARAMS = bytes.fromhex("06032b6570")  # OID 1.3.101.112 (RFC 8410), PKCS#11 3.0 §2.3.5
P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")  # OID 1.2.840.10045.3.1.7
GCM_TAG_BITS = 128


class KeyKind(StrEnum):
    """The three kinds of key the site keeps on a token."""

    aes = "AES-256 secret key"
    ed25519 = "Ed25519 key pair"
    p256 = "ECDSA P-256 key pair"


_PROTECT = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False}


def _lookup(session: pkcs11.Session, label: str, kind: KeyKind, cls: ObjectClass) -> pkcs11.Key:
    key_type = KeyType.AES if kind is KeyKind.aes else (
        KeyType.EC_EDWARDS if kind is KeyKind.ed25519 else KeyType.EC)
    return session.get_key(object_class=cls, key_type=key_type, label=label)


def has_key(token: Token, label: str, kind: KeyKind) -> bool:
    """Tell whether the token holds the private/secret key of ``label`` and ``kind``."""
    cls = ObjectClass.SECRET_KEY if kind is KeyKind.aes else ObjectClass.PRIVATE_KEY

    def probe(session: pkcs11.Session) -> bool:
        try:
            _lookup(session, label, kind, cls)
        except p11e.NoSuchKey:
            return False
        return True

    return token.run("C_FindObjects", probe)


def _signing(key: pkcs11.Key) -> pkcs11.SignMixin:
    if not isinstance(key, pkcs11.SignMixin):
        raise TypeError(f"{key!r} cannot sign")
    return key


def _gcm_encrypt(key: pkcs11.Key, data: bytes, params: GCMParams) -> bytes:
    if not isinstance(key, pkcs11.EncryptMixin):
        raise TypeError(f"{key!r} cannot encrypt")
    out = key.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    assert isinstance(out, bytes)  # one buffer in, one out (not the streaming form)
    return out


def _gcm_decrypt(key: pkcs11.Key, data: bytes, params: GCMParams) -> bytes:
    if not isinstance(key, pkcs11.DecryptMixin):
        raise TypeError(f"{key!r} cannot decrypt")
    out = key.decrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    assert isinstance(out, bytes)
    return out


def private_key(session: pkcs11.Session, token: Token, label: str, kind: KeyKind) -> pkcs11.Key:
    """Find the private (or secret) key; raise ``TokenKeyMissing`` when it is not there."""
    return token.key(session, (label, kind.value), lambda s: _find_private(s, token, label, kind))


def _find_private(session: pkcs11.Session, token: Token, label: str,
                  kind: KeyKind) -> pkcs11.Key:
    cls = ObjectClass.SECRET_KEY if kind is KeyKind.aes else ObjectClass.PRIVATE_KEY
    try:
        return _lookup(session, label, kind, cls)
    except p11e.NoSuchKey as exc:
        raise TokenKeyMissing(token.token_label, label, kind.value) from exc
    except p11e.MultipleObjectsReturned as exc:
        raise TokenKeyUnsafe(token.token_label, label, "several objects carry this label") from exc


def check_protected(token: Token, label: str, kind: KeyKind) -> None:
    """Refuse a key that is extractable or not sensitive (it could leave the token).

    Raises:
        TokenKeyMissing, TokenKeyUnsafe
    """
    def attributes(session: pkcs11.Session) -> tuple[bool, bool]:
        key = _find_private(session, token, label, kind)
        return bool(key[Attribute.EXTRACTABLE]), bool(key[Attribute.SENSITIVE])

    extractable, sensitive = token.run("C_GetAttributeValue", attributes)
    if extractable or not sensitive:
        raise TokenKeyUnsafe(token.token_label, label,
                             "is extractable or not sensitive; refusing to use it")


def generate(token: Token, label: str, kind: KeyKind) -> None:
    """Generate a non-extractable key (pair) of ``kind`` on the token under ``label``."""
    def run(session: pkcs11.Session) -> None:
        if kind is KeyKind.aes:
            session.generate_key(KeyType.AES, 256, label=label, store=True,
                                 template={**_PROTECT, Attribute.WRAP: False,
                                           Attribute.UNWRAP: False})
            return
        params = ED25519_PARAMS if kind is KeyKind.ed25519 else P256_PARAMS
        session.generate_keypair(
            KeyType.EC_EDWARDS if kind is KeyKind.ed25519 else KeyType.EC,
            mechanism=(Mechanism.EC_EDWARDS_KEY_PAIR_GEN if kind is KeyKind.ed25519
                       else Mechanism.EC_KEY_PAIR_GEN),
            label=label, store=True,
            public_template={Attribute.EC_PARAMS: params, Attribute.TOKEN: True},
            private_template={**_PROTECT, Attribute.SIGN: True},
        )

    token.run("C_GenerateKey", run)


def import_private(
    token: Token, label: str, kind: KeyKind, value: Secret, public_point: bytes,
) -> None:
    """Import an existing private key (Ed25519 raw seed or P-256 scalar) as non-extractable.

    ``public_point`` is the raw public key (Ed25519) or uncompressed point (P-256); the
    public object lets the site read the key back without the private half.
    """
    params = ED25519_PARAMS if kind is KeyKind.ed25519 else P256_PARAMS
    key_type = KeyType.EC_EDWARDS if kind is KeyKind.ed25519 else KeyType.EC
    point = OctetString(public_point).dump()

    def run(session: pkcs11.Session) -> None:
        session.create_object({
            Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: key_type,
            Attribute.LABEL: label, Attribute.EC_PARAMS: params, Attribute.SIGN: True,
            Attribute.VALUE: bytes(value.reveal()), **_PROTECT,
        })
        session.create_object({
            Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: key_type,
            Attribute.LABEL: label, Attribute.EC_PARAMS: params, Attribute.TOKEN: True,
            Attribute.EC_POINT: point, Attribute.VERIFY: True,
        })

    token.run("C_CreateObject", run)


def public_point(token: Token, label: str, kind: KeyKind) -> bytes:
    """Return the raw public key (Ed25519, 32 bytes) or uncompressed point (P-256)."""
    key_type = KeyType.EC_EDWARDS if kind is KeyKind.ed25519 else KeyType.EC

    def run(session: pkcs11.Session) -> bytes:
        try:
            key = session.get_key(object_class=ObjectClass.PUBLIC_KEY, key_type=key_type,
                                  label=label)
        except p11e.NoSuchKey as exc:
            raise TokenKeyMissing(token.token_label, label, f"{kind.value} public key") from exc
        return bytes(OctetString.load(bytes(key[Attribute.EC_POINT])).native)

    return token.run("C_GetAttributeValue", run)


def sign_ed25519(token: Token, label: str, data: bytes) -> bytes:
    """Sign ``data`` with CKM_EDDSA (pure Ed25519, RFC 8032) on the token."""
    return token.run("C_Sign", lambda s: bytes(_signing(
        private_key(s, token, label, KeyKind.ed25519)).sign(data, mechanism=Mechanism.EDDSA)))


def sign_p256_sha256(token: Token, label: str, data: bytes) -> bytes:
    """Sign SHA-256(``data``) with CKM_ECDSA on the token; return a DER ECDSA-Sig-Value."""
    digest = hashlib.sha256(data).digest()
    raw = token.run("C_Sign", lambda s: bytes(_signing(
        private_key(s, token, label, KeyKind.p256)).sign(digest, mechanism=Mechanism.ECDSA)))
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"),
                                int.from_bytes(raw[half:], "big"))


def p256_public_key(point: bytes) -> ec.EllipticCurvePublicKey:
    """Load an uncompressed P-256 point read from the token."""
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


class TokenAesGcm:
    """AES-256-GCM under a token key, with the ``AESGCM`` encrypt/decrypt signature.

    The key never leaves the token; nonce and AAD come from the caller (the envelope format).
    """

    __slots__ = ("_label", "_token")

    def __init__(self, token: Token, label: str) -> None:
        self._token = token
        self._label = label

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        """Return ciphertext ‖ 16-byte tag."""
        params = GCMParams(nonce, associated_data or b"", GCM_TAG_BITS)
        return self._token.run("C_Encrypt", lambda s: _gcm_encrypt(
            private_key(s, self._token, self._label, KeyKind.aes), data, params))

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        """Return the plaintext; raise ``InvalidTag`` on a wrong key, AAD or modified data."""
        params = GCMParams(nonce, associated_data or b"", GCM_TAG_BITS)

        def run(session: pkcs11.Session) -> bytes:
            key = private_key(session, self._token, self._label, KeyKind.aes)
            try:
                return _gcm_decrypt(key, data, params)
            except (p11e.GeneralError, p11e.EncryptedDataInvalid,
                    p11e.EncryptedDataLenRange) as exc:
                # SoftHSM2 reports a failed GCM tag check as CKR_GENERAL_ERROR.
                raise InvalidTag from exc

        return self._token.run("C_Decrypt", run)
