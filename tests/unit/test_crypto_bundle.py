"""Enrolment bundle format: round trip, refusal of foreign payloads, no secret in repr."""

from __future__ import annotations

import json

import pytest

from provisioner.crypto.bundle import EnrolmentBundle, open_bundle, seal_bundle
from provisioner.crypto.sealed import seal_bytes
from provisioner.crypto.secret import Secret
from provisioner.errors import UnsupportedVersion, WrongPassphrase

FAST_N = 2**10


def _bundle() -> EnrolmentBundle:
    return EnrolmentBundle(
        station_id="ST-1",
        site_url="https://127.0.0.1:8443",
        ca_cert_pem=b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
        client_cert_pem=b"-----BEGIN CERTIFICATE-----\nME\n-----END CERTIFICATE-----\n",
        client_key_pem=Secret(b"-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n"),
        drbg_state=Secret(bytes(range(40))),
        transport_key=Secret(bytes(range(100, 132))),
    )


def test_bundle_round_trips_every_field() -> None:
    original = _bundle()
    opened = open_bundle(seal_bundle(original, "one-time", scrypt_n=FAST_N), "one-time")
    assert (opened.station_id, opened.site_url) == ("ST-1", "https://127.0.0.1:8443")
    assert opened.ca_cert_pem == original.ca_cert_pem
    assert opened.client_cert_pem == original.client_cert_pem
    assert opened.client_key_pem == original.client_key_pem
    assert opened.drbg_state == original.drbg_state
    assert opened.transport_key == original.transport_key


def test_wrong_passphrase_is_named() -> None:
    blob = seal_bundle(_bundle(), "one-time", scrypt_n=FAST_N)
    with pytest.raises(WrongPassphrase):
        open_bundle(blob, "another", source="ST-1.bundle")


@pytest.mark.parametrize(
    "payload",
    [
        {"format": "provisioner-enrolment/v0"},
        {"format": "provisioner-enrolment/v1", "station_id": "ST-1"},
        ["not", "an", "object"],
    ],
)
def test_foreign_or_incomplete_payload_is_unsupported(payload: object) -> None:
    blob = seal_bytes(json.dumps(payload).encode(), "pw", scrypt_n=FAST_N)
    with pytest.raises(UnsupportedVersion) as caught:
        open_bundle(blob, "pw", source="ST-9.bundle")
    assert caught.value.path == "ST-9.bundle"


def test_wipe_zeroises_and_repr_hides_secrets() -> None:
    bundle = _bundle()
    text = repr(bundle)
    assert "PRIVATE KEY" not in text
    assert bytes(range(100, 132)).hex() not in text
    bundle.wipe()
    assert not any(bundle.transport_key.reveal())
    assert not any(bundle.drbg_state.reveal())
