"""Enrol a station from a sealed bundle: seal its secrets under a new passphrase, keep the rest."""

from __future__ import annotations

from pathlib import Path

from provisioner.crypto.bundle import open_bundle
from provisioner.crypto.sealed import StationSecrets, save_station_secrets
from provisioner.crypto.secret import Secret
from provisioner.errors import StationConfigError
from provisioner.station.config import StationConfig, StationPaths
from provisioner.station.keystore import KeyStore

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
        StationConfigError: the directory is already enrolled or the passphrase is too short.
    """
    paths = StationPaths(data_dir)
    if paths.config.exists() or paths.secrets.exists():
        raise StationConfigError(str(data_dir), "already enrolled (remove it to enrol again)")
    if len(station_passphrase) < MIN_PASSPHRASE_CHARS:
        raise StationConfigError(
            str(data_dir), f"station passphrase needs at least {MIN_PASSPHRASE_CHARS} characters"
        )
    bundle = open_bundle(bundle_path.read_bytes(), one_time_passphrase, source=str(bundle_path))
    config = StationConfig(
        station_id=bundle.station_id,
        site_url=bundle.site_url,
        ca_cert_pem=bundle.ca_cert_pem.decode("ascii"),
        client_cert_pem=bundle.client_cert_pem.decode("ascii"),
    )
    drbg_state = bundle.drbg_state
    secrets = StationSecrets(
        station_id=config.station_id,
        drbg_state=Secret(b""),
        transport_key=bundle.transport_key,
        tls_key_pem=bundle.client_key_pem,
    )
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
