"""Enrolment bundles: what a new station receives, sealed under a one-time passphrase.

The site writes a bundle and the station opens it; this module is the one place that knows
its format (JSON inside ``sealed.seal_bytes``; binary fields base64). A bundle carries the
station's KeyStream working state at index 0, never the seed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from provisioner.crypto.sealed import MAGIC, seal_bytes, unseal_bytes
from provisioner.crypto.secret import Secret
from provisioner.errors import UnsupportedVersion

BUNDLE_FORMAT = "provisioner-enrolment/v1"


@dataclass(frozen=True, slots=True)
class EnrolmentBundle:
    """An opened bundle; the three secrets are wiped by :meth:`wipe`."""

    station_id: str
    site_url: str
    ca_cert_pem: bytes
    client_cert_pem: bytes
    client_key_pem: Secret = field(repr=False)
    drbg_state: Secret = field(repr=False)
    transport_key: Secret = field(repr=False)

    def wipe(self) -> None:
        """Zeroise the secrets held by the bundle."""
        for secret in (self.client_key_pem, self.drbg_state, self.transport_key):
            secret.wipe()


def _b64(data: bytes | bytearray) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def seal_bundle(bundle: EnrolmentBundle, passphrase: str, *, scrypt_n: int = 2**15) -> bytes:
    """Seal ``bundle`` under ``passphrase``; the JSON plaintext buffer is wiped afterwards."""
    payload = bytearray(json.dumps({
        "format": BUNDLE_FORMAT,
        "station_id": bundle.station_id,
        "site_url": bundle.site_url,
        "ca_cert_pem": bundle.ca_cert_pem.decode("ascii"),
        "client_cert_pem": bundle.client_cert_pem.decode("ascii"),
        "client_key_pem": bytes(bundle.client_key_pem.reveal()).decode("ascii"),
        "drbg_state": _b64(bundle.drbg_state.reveal()),
        "transport_key": _b64(bundle.transport_key.reveal()),
    }).encode("utf-8"))
    try:
        return seal_bytes(payload, passphrase, scrypt_n=scrypt_n)
    finally:
        payload[:] = bytes(len(payload))


def is_sealed_blob(blob: bytes) -> bool:
    """Return whether ``blob`` starts like a sealed file (a bundle is one)."""
    return blob.startswith(MAGIC)


def open_bundle(blob: bytes, passphrase: str, *, source: str = "<bundle>") -> EnrolmentBundle:
    """Open a sealed bundle.

    Raises:
        WrongPassphrase, Tampered, Truncated: the sealed container does not open.
        UnsupportedVersion: it opens but is not a bundle of this format.
    """
    with unseal_bytes(blob, passphrase, source=source) as plain:
        raw = json.loads(bytes(plain.reveal()).decode("utf-8"))
    try:
        if not isinstance(raw, dict) or raw.get("format") != BUNDLE_FORMAT:
            raise UnsupportedVersion(source)
        return EnrolmentBundle(
            station_id=str(raw["station_id"]),
            site_url=str(raw["site_url"]),
            ca_cert_pem=str(raw["ca_cert_pem"]).encode("ascii"),
            client_cert_pem=str(raw["client_cert_pem"]).encode("ascii"),
            client_key_pem=Secret(str(raw["client_key_pem"]).encode("ascii")),
            drbg_state=Secret(base64.b64decode(raw["drbg_state"], validate=True)),
            transport_key=Secret(base64.b64decode(raw["transport_key"], validate=True)),
        )
    except (KeyError, binascii.Error, UnicodeEncodeError) as exc:
        raise UnsupportedVersion(source) from exc
    finally:
        if isinstance(raw, dict):
            raw.clear()
