"""Site key material: master key file, site CA, TLS server and station client certificates."""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioner.crypto.secret import Secret
from provisioner.errors import ProvisionerError

MASTER_KEY_SIZE_BYTES = 32
CA_LIFETIME = timedelta(days=3650)
LEAF_LIFETIME = timedelta(days=825)
_BACKDATE = timedelta(minutes=5)


class SiteKeyError(ProvisionerError):
    """A site key file is missing, has loose permissions or the wrong size."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def write_private_file(path: Path, data: bytes | bytearray) -> None:
    """Write ``data`` to a new file created with mode 0600 (never world-readable, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def create_master_key(path: Path) -> None:
    """Create the site master key file (32 random bytes, mode 0600)."""
    key = bytearray(os.urandom(MASTER_KEY_SIZE_BYTES))
    try:
        write_private_file(path, key)
    finally:
        key[:] = bytes(len(key))


def load_master_key(path: Path) -> Secret:
    """Load the master key, refusing a file readable by group or others.

    Raises:
        SiteKeyError: missing file, mode other than 0600/0400, or wrong size.
    """
    try:
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise SiteKeyError(path, f"cannot read master key: {exc.strerror}") from exc
    if mode & 0o077:
        raise SiteKeyError(path, f"master key mode is {mode:04o}, must be 0600")
    data = bytearray(path.read_bytes())
    try:
        if len(data) != MASTER_KEY_SIZE_BYTES:
            raise SiteKeyError(path, f"master key is {len(data)} bytes, expected 32")
        return Secret(data)
    finally:
        data[:] = bytes(len(data))


class CaSigner(Protocol):
    """The site CA: its certificate, and signing a certificate builder with its key.

    Implemented by ``IssuedCert`` (key PEM in memory) and by a CA key on a PKCS#11 token.
    """

    @property
    def cert(self) -> x509.Certificate:
        """The CA certificate."""
        ...

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Sign ``builder`` (ECDSA P-256 with SHA-256) and return the certificate."""
        ...


@dataclass(frozen=True, slots=True)
class IssuedCert:
    """A certificate and the PEM of its private key (held in a Secret)."""

    cert: x509.Certificate
    key_pem: Secret

    @property
    def cert_pem(self) -> bytes:
        """The certificate in PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Sign ``builder`` with this certificate's key (a CA key held in memory)."""
        key = serialization.load_pem_private_key(bytes(self.key_pem.reveal()), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("the site CA key must be an EC key")
        return builder.sign(key, hashes.SHA256())


def fingerprint(cert: x509.Certificate) -> str:
    """Return the lower-case hex SHA-256 of the certificate's DER encoding."""
    return cert.fingerprint(hashes.SHA256()).hex()


def fingerprint_der(der: bytes) -> str:
    """Return the lower-case hex SHA-256 of a DER certificate."""
    return hashlib.sha256(der).hexdigest()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> Secret:
    return Secret(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _name(common_name: str, site_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, site_name),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def create_ca(site_name: str, now: datetime) -> IssuedCert:
    """Create the self-signed site CA (ECDSA P-256, path length 0) with a key in memory."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca_builder(site_name, now, key.public_key()).sign(key, hashes.SHA256())
    return IssuedCert(cert, _key_pem(key))


def ca_builder(
    site_name: str, now: datetime, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    """The self-signed site CA certificate for ``public_key``, ready to be signed."""
    name = _name(f"{site_name} site CA", site_name)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _issue(
    ca: CaSigner,
    common_name: str,
    site_name: str,
    now: datetime,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
) -> IssuedCert:
    ca_public = ca.cert.public_key()
    if not isinstance(ca_public, ec.EllipticCurvePublicKey):
        raise TypeError("the site CA key must be an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, site_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return IssuedCert(ca.sign(builder), _key_pem(key))


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue_server_cert(
    ca: CaSigner, site_name: str, hosts: list[str], now: datetime
) -> IssuedCert:
    """Issue the site's TLS server certificate for localhost, 127.0.0.1 and ``hosts``."""
    names = list(dict.fromkeys(["localhost", "127.0.0.1", *hosts]))
    return _issue(
        ca, names[0] if not hosts else hosts[0], site_name, now,
        ExtendedKeyUsageOID.SERVER_AUTH, [_san(host) for host in names],
    )


def issue_station_cert(
    ca: CaSigner, site_name: str, station_id: str, now: datetime
) -> IssuedCert:
    """Issue a station's TLS client certificate (CN = station id)."""
    return _issue(ca, station_id, site_name, now, ExtendedKeyUsageOID.CLIENT_AUTH, [])


def load_issued(cert_path: Path, key_path: Path) -> IssuedCert:
    """Load a certificate and its private key PEM from the site directory."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return IssuedCert(cert, Secret(key_path.read_bytes()))
