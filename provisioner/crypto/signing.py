"""Ed25519 signing and verification keys with key ids and PEM load/save."""

from __future__ import annotations

from typing import Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provisioner.crypto.secret import Secret
from provisioner.errors import BadSignature, CryptoError


def _key_id(raw: bytes) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(raw)
    return digest.finalize()[:8].hex()


class VerifyKey:
    """An Ed25519 public key."""

    __slots__ = ("_key", "_key_id", "raw")

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key
        self.raw: bytes = key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._key_id = _key_id(self.raw)  # named in every audit entry: hashed once

    @classmethod
    def from_raw(cls, raw: bytes) -> VerifyKey:
        """Load a 32-byte raw public key.

        Raises:
            CryptoError: not a valid Ed25519 public key.
        """
        try:
            return cls(Ed25519PublicKey.from_public_bytes(bytes(raw)))
        except ValueError as exc:
            raise CryptoError(f"not an Ed25519 public key ({len(raw)} bytes)") from exc

    @classmethod
    def from_pem(cls, data: bytes) -> VerifyKey:
        """Load a SubjectPublicKeyInfo PEM public key.

        Raises:
            CryptoError: not an Ed25519 public key PEM.
        """
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise CryptoError("not a readable PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise CryptoError(f"PEM public key is {type(key).__name__}, expected Ed25519")
        return cls(key)

    def to_pem(self) -> bytes:
        """Return the key as SubjectPublicKeyInfo PEM."""
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def key_id(self) -> str:
        """First 8 bytes of SHA-256 over the raw public key, as hex."""
        return self._key_id

    def verify(self, data: bytes, signature: bytes, what: str = "data") -> None:
        """Check ``signature`` over ``data``.

        Raises:
            BadSignature: the signature does not verify under this key.
        """
        try:
            self._key.verify(bytes(signature), bytes(data))
        except InvalidSignature as exc:
            raise BadSignature(self.key_id, what) from exc

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"VerifyKey(key_id={self.key_id})"


class SigningKey:
    """An Ed25519 private key; its PEM leaves only as a ``Secret``."""

    __slots__ = ("_key", "verify_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.verify_key = VerifyKey(key.public_key())

    @classmethod
    def generate(cls) -> SigningKey:
        """Create a new random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes | bytearray) -> SigningKey:
        """Load an unencrypted PKCS#8 PEM private key.

        Raises:
            CryptoError: not an Ed25519 private key PEM.
        """
        try:
            key = serialization.load_pem_private_key(bytes(data), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise CryptoError("not a readable unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise CryptoError(f"PEM private key is {type(key).__name__}, expected Ed25519")
        return cls(key)

    def to_pem(self) -> Secret:
        """Return the key as unencrypted PKCS#8 PEM."""
        return Secret(
            self._key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    @property
    def key_id(self) -> str:
        """The key id of the matching verify key."""
        return self.verify_key.key_id

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature over ``data``."""
        return self._key.sign(bytes(data))

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id})"


class Signer(Protocol):
    """What signs for the site (audit entries, firmware records, manifests): a ``SigningKey``
    in memory or an Ed25519 key on a PKCS#11 token. Signatures are pure Ed25519 (RFC 8032)."""

    @property
    def verify_key(self) -> VerifyKey:
        """The public half."""
        ...

    @property
    def key_id(self) -> str:
        """The key id of ``verify_key``."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte signature over ``data``."""
        ...
