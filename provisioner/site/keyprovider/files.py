"""Key files in the site directory (mode 0600): the default provider, as before PKCS#11."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from provisioner.crypto import envelope
from provisioner.crypto.secret import Secret
from provisioner.crypto.signing import Signer, SigningKey
from provisioner.site import keys
from provisioner.site.keys import CaSigner
from provisioner.site.sitedir import SiteDir


class _FileCa:
    """The CA key file, read only for the moment it signs."""

    def __init__(self, paths: SiteDir) -> None:
        self._paths = paths
        self.cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Sign with the CA key file."""
        issued = keys.load_issued(self._paths.ca_cert, self._paths.ca_key)
        try:
            return issued.sign(builder)
        finally:
            issued.key_pem.wipe()


class FileKeys:
    """Master key, signing key and CA key read from the site directory."""

    def __init__(self, root: Path) -> None:
        paths = SiteDir(root)
        self._master = keys.load_master_key(paths.master_key)
        self._signer = SigningKey.from_pem(paths.signing_key.read_bytes())
        self._ca = _FileCa(paths)
        self.description = f"key files in {root}"

    @property
    def signer(self) -> Signer:
        """The manufacturer key, in memory."""
        return self._signer

    @property
    def ca(self) -> CaSigner:
        """The site CA, key file read per signature."""
        return self._ca

    def wrap(self, plaintext: bytes | bytearray, aad: bytes) -> bytes:
        """Wrap under the master key file."""
        return envelope.wrap(self._master, plaintext, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> Secret:
        """Unwrap under the master key file."""
        return envelope.unwrap(self._master, blob, aad)

    def close(self) -> None:
        """Wipe the master key."""
        self._master.wipe()
