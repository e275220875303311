"""Enrolment bundles: everything a station needs, sealed under a one-time passphrase."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field

from provisioner.crypto.keystream import KeyStream
from provisioner.crypto.sealed import seal_bytes, unseal_bytes
from provisioner.crypto.secret import Secret
from provisioner.errors import UnsupportedVersion

BUNDLE_FORMAT = "provisioner-enrolment/v1"
PASSPHRASE_GROUPS = 6


def new_passphrase() -> str:
    """Return a one-time passphrase (6 groups of 4 hex digits, 96 bits)."""
    return "-".join(secrets.token_hex(2) for _ in range(PASSPHRASE_GROUPS))


@dataclass(frozen=True, slots=True)
class EnrolmentBundle:
    """The opened bundle (JSON keys match the field names; binary fields base64)."""

    station_id: str
    site_url: str
    ca_cert_pem: bytes
    client_cert_pem: bytes
    client_key_pem: Secret = field(repr=False)
    drbg_state: Secret = field(repr=False)
    transport_key: Secret = field(repr=False)

    def wipe(self) -> None:
        """Wipe the secrets held by the bundle."""
        for secret in (self.client_key_pem, self.drbg_state, self.transport_key):
            secret.wipe()


def _b64(data: bytes | bytearray) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def seal_bundle(
    *, station_id: str, site_url: str, ca_cert_pem: bytes, client_cert_pem: bytes,
    client_key_pem: Secret, seed: Secret, transport_key: Secret, passphrase: str,
    scrypt_n: int = 2**15,
) -> bytes:
    """Seal a station's enrolment bundle; the KeyStream state is at index 0, never the seed."""
    with KeyStream.from_seed(seed, station_id).export_state() as state:
        payload = bytearray(json.dumps({
            "format": BUNDLE_FORMAT,
            "station_id": station_id,
            "site_url": site_url,
            "ca_cert_pem": ca_cert_pem.decode("ascii"),
            "client_cert_pem": client_cert_pem.decode("ascii"),
            "client_key_pem": bytes(client_key_pem.reveal()).decode("ascii"),
            "drbg_state": _b64(state.reveal()),
            "transport_key": _b64(transport_key.reveal()),
        }).encode("utf-8"))
    try:
        return seal_bytes(payload, passphrase, scrypt_n=scrypt_n)
    finally:
        payload[:] = bytes(len(payload))


def open_bundle(blob: bytes, passphrase: str, *, source: str = "<bundle>") -> EnrolmentBundle:
    """Open a sealed bundle (raises the sealed-file errors on a wrong passphrase/tampering)."""
    with unseal_bytes(blob, passphrase, source=source) as plain:
        raw = json.loads(bytes(plain.reveal()).decode("utf-8"))
    if raw.get("format") != BUNDLE_FORMAT:
        raise UnsupportedVersion(source)
    return EnrolmentBundle(
        station_id=raw["station_id"],
        site_url=raw["site_url"],
        ca_cert_pem=raw["ca_cert_pem"].encode("ascii"),
        client_cert_pem=raw["client_cert_pem"].encode("ascii"),
        client_key_pem=Secret(raw["client_key_pem"].encode("ascii")),
        drbg_state=Secret(base64.b64decode(raw["drbg_state"])),
        transport_key=Secret(base64.b64decode(raw["transport_key"])),
    )
