"""The site's keys on a PKCS#11 token: AES master key, Ed25519 signer, P-256 site CA.

Each wrap and unwrap is one C_Encrypt/C_Decrypt (AES-GCM) on the token, each signature one
C_Sign; no key value ever enters this process. The TLS server key stays a 0600 file: the
standard library's ssl module cannot use a key it cannot read (see docs/keys.md).
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from provisioner.crypto import envelope
from provisioner.crypto.secret import Secret
from provisioner.crypto.signing import Signer, VerifyKey
from provisioner.hsm import objects
from provisioner.hsm.objects import KeyKind
from provisioner.hsm.token import Token
from provisioner.site.keyprovider.certsign import sign_externally
from provisioner.site.keyprovider.config import TokenConfig
from provisioner.site.keys import CaSigner
from provisioner.site.sitedir import SiteDir


class TokenSigner:
    """The manufacturer Ed25519 key on the token (CKM_EDDSA)."""

    __slots__ = ("_label", "_token", "verify_key")

    def __init__(self, token: Token, label: str) -> None:
        self._token = token
        self._label = label
        self.verify_key = VerifyKey.from_raw(objects.public_point(token, label, KeyKind.ed25519))

    @property
    def key_id(self) -> str:
        """The key id of the public half."""
        return self.verify_key.key_id

    def sign(self, data: bytes) -> bytes:
        """Sign on the token."""
        return objects.sign_ed25519(self._token, self._label, bytes(data))

    def __repr__(self) -> str:
        return f"TokenSigner(key_id={self.key_id}, label={self._label!r})"


class TokenCa:
    """The site CA key on the token (CKM_ECDSA over SHA-256 of the TBSCertificate)."""

    def __init__(self, token: Token, label: str, cert: x509.Certificate) -> None:
        self._token = token
        self._label = label
        self.cert = cert
        self.public_key = objects.p256_public_key(
            objects.public_point(token, label, KeyKind.p256))

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Sign a certificate on the token."""
        return sign_externally(builder, self.public_key,
                               lambda tbs: objects.sign_p256_sha256(self._token, self._label, tbs))


def check_token_keys(token: Token, config: TokenConfig) -> None:
    """Refuse to run unless the three keys are present and cannot leave the token.

    Raises:
        TokenKeyMissing, TokenKeyUnsafe
    """
    for label, kind in ((config.master_label, KeyKind.aes),
                        (config.signing_label, KeyKind.ed25519),
                        (config.ca_label, KeyKind.p256)):
        objects.check_protected(token, label, kind)


class TokenKeys:
    """``SiteKeys`` on a token, opened once per process (one per site worker)."""

    def __init__(self, root: Path, config: TokenConfig, token: Token) -> None:
        self._token = token
        try:
            check_token_keys(token, config)
            self._cipher = objects.TokenAesGcm(token, config.master_label)
            self._signer = TokenSigner(token, config.signing_label)
            cert = x509.load_pem_x509_certificate(SiteDir(root).ca_cert.read_bytes())
            self._ca = TokenCa(token, config.ca_label, cert)
        except BaseException:
            token.close()
            raise
        self.description = (f"PKCS#11 token {config.token_label!r} ({config.module}): "
                            f"{config.master_label}, {config.signing_label}, {config.ca_label}")

    @classmethod
    def open(cls, root: Path, config: TokenConfig, pin: Secret) -> TokenKeys:
        """Load the module, find the token, log in and check the keys."""
        return cls(root, config, Token(config.module, config.token_label, pin))

    @property
    def signer(self) -> Signer:
        """The manufacturer key on the token."""
        return self._signer

    @property
    def ca(self) -> CaSigner:
        """The site CA on the token."""
        return self._ca

    def wrap(self, plaintext: bytes | bytearray, aad: bytes) -> bytes:
        """Wrap on the token."""
        return envelope.wrap_with(self._cipher, plaintext, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> Secret:
        """Unwrap on the token."""
        return envelope.unwrap_with(self._cipher, blob, aad)

    def close(self) -> None:
        """Log out (close every session) and release the module."""
        self._token.close()
