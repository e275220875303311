"""Enrol a station from a sealed bundle: seal its secrets under a new passphrase, keep the rest."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from provisioner.crypto.sealed import StationSecrets, save_station_secrets, unseal_bytes
from provisioner.crypto.secret import Secret
from provisioner.errors import StationConfigError, UnsupportedVersion
from provisioner.station.config import StationConfig, StationPaths
from provisioner.station.keystore import KeyStore

BUNDLE_FORMAT = "provisioner-enrolment/v1"
MIN_PASSPHRASE_CHARS = 8


def enroll(
    bundle_path: Path,
    one_time_passphrase: str,
    station_passphrase: str,
    data_dir: Path,
    *,
    scrypt_n: int = 2**15,
) -> StationConfig:
    """Open the bundle, seal transport key and TLS key under ``station_passphrase``.

    Writes ``station.sealed`` (0600), the DRBG working state encrypted under a key derived from
    the sealed transport key (``keystore``; the sealed DRBG field stays empty so no stale state
    outlives a used index), and the public ``station.json`` (id, site URL, CA and client
    certificates). The bundle never holds the seed, so neither does the station.

    Raises:
        WrongPassphrase, Tampered, Truncated, UnsupportedVersion: the bundle does not open.
        StationConfigError: the directory is already enrolled, the passphrase is too short, or
            the bundle lacks a field.
    """
    paths = StationPaths(data_dir)
    if paths.config.exists() or paths.secrets.exists():
        raise StationConfigError(str(data_dir), "already enrolled (remove it to enrol again)")
    if len(station_passphrase) < MIN_PASSPHRASE_CHARS:
        raise StationConfigError(
            str(data_dir), f"station passphrase needs at least {MIN_PASSPHRASE_CHARS} characters"
        )
    with unseal_bytes(bundle_path.read_bytes(), one_time_passphrase,
                      source=str(bundle_path)) as plain:
        raw = json.loads(bytes(plain.reveal()).decode("utf-8"))
    if not isinstance(raw, dict) or raw.get("format") != BUNDLE_FORMAT:
        raise UnsupportedVersion(str(bundle_path))
    try:
        config = StationConfig(
            station_id=str(raw["station_id"]),
            site_url=str(raw["site_url"]),
            ca_cert_pem=str(raw["ca_cert_pem"]),
            client_cert_pem=str(raw["client_cert_pem"]),
        )
        drbg_state = Secret(base64.b64decode(raw["drbg_state"], validate=True))
        secrets = StationSecrets(
            station_id=config.station_id,
            drbg_state=Secret(b""),
            transport_key=Secret(base64.b64decode(raw["transport_key"], validate=True)),
            tls_key_pem=Secret(str(raw["client_key_pem"]).encode("ascii")),
        )
    except (KeyError, binascii.Error) as exc:
        raise StationConfigError(str(bundle_path), f"bundle lacks a valid field: {exc}") from exc
    finally:
        raw.clear()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        KeyStore.create(paths.keystream, config.station_id, secrets.transport_key,
                        drbg_state).close()
        save_station_secrets(paths.secrets, secrets, station_passphrase, scrypt_n=scrypt_n)
    finally:
        drbg_state.wipe()
        secrets.wipe()
    config.save(paths.config)
    return config
