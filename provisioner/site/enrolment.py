"""Site side of enrolment: one-time passphrases and the bundle built from a station's seed."""

from __future__ import annotations

import secrets

from provisioner.crypto.bundle import EnrolmentBundle, seal_bundle
from provisioner.crypto.keystream import KeyStream
from provisioner.crypto.secret import Secret

PASSPHRASE_GROUPS = 6


def new_passphrase() -> str:
    """Return a one-time passphrase (6 groups of 4 hex digits, 96 bits)."""
    return "-".join(secrets.token_hex(2) for _ in range(PASSPHRASE_GROUPS))


def seal_station_bundle(
    *, station_id: str, site_url: str, ca_cert_pem: bytes, client_cert_pem: bytes,
    client_key_pem: Secret, seed: Secret, transport_key: Secret, passphrase: str,
    scrypt_n: int = 2**15,
) -> bytes:
    """Seal a station's enrolment bundle; the KeyStream state is at index 0, never the seed."""
    with KeyStream.from_seed(seed, station_id).export_state() as state:
        bundle = EnrolmentBundle(
            station_id=station_id, site_url=site_url, ca_cert_pem=ca_cert_pem,
            client_cert_pem=client_cert_pem, client_key_pem=client_key_pem,
            drbg_state=state, transport_key=transport_key,
        )
        return seal_bundle(bundle, passphrase, scrypt_n=scrypt_n)
