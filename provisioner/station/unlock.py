"""Unlock an enrolled station: unseal its secrets once and assemble a ready runner."""

from __future__ import annotations

from pathlib import Path

import httpx

from provisioner.crypto.sealed import StationSecrets, load_station_secrets, save_station_secrets
from provisioner.crypto.secret import Secret
from provisioner.station.config import StationConfig, StationPaths
from provisioner.station.journal import Journal
from provisioner.station.keystore import KeyStore
from provisioner.station.runner import StationRunner
from provisioner.station.site_client import SiteClient, build_ssl_context


def open_station(
    data_dir: Path,
    passphrase: str,
    *,
    scrypt_n: int = 2**15,
    transport: httpx.BaseTransport | None = None,
) -> StationRunner:
    """Unseal the station in ``data_dir`` with ``passphrase`` and return its runner.

    The key stream resumes at the most advanced of: the sealed state, the write-ahead state
    file, one past the highest index in the journal.

    Raises:
        StationConfigError: not enrolled. WrongPassphrase, Tampered, Truncated: bad sealed file.
    """
    paths = StationPaths(data_dir)
    config = StationConfig.load(paths.config)
    secrets = load_station_secrets(paths.secrets, passphrase)
    tls_key = secrets.tls_key_pem
    try:
        context = build_ssl_context(
            config.ca_cert_pem.encode(), config.client_cert_pem.encode(), tls_key.reveal()
        )
    except BaseException:
        _wipe(secrets)
        raise
    transport_key = Secret(secrets.transport_key.reveal())
    tls_copy = Secret(tls_key.reveal())

    def reseal(state: Secret) -> None:
        # A fresh StationSecrets per seal; the caller owns and wipes ``state``.
        sealed = StationSecrets(config.station_id, Secret(state.reveal()),
                                Secret(transport_key.reveal()), Secret(tls_copy.reveal()))
        try:
            save_station_secrets(paths.secrets, sealed, passphrase, scrypt_n=scrypt_n)
        finally:
            _wipe(sealed)

    journal = Journal(paths.journal)
    highest = journal.highest_index()
    try:
        keystore = KeyStore.unlock(
            paths.keystream, config.station_id, secrets.transport_key, secrets.drbg_state,
            floor_index=0 if highest is None else highest + 1, reseal=reseal,
        )
    finally:
        _wipe(secrets)
    keystore.start_background_reseal()
    client = SiteClient(config.site_url, context, transport=transport)
    return StationRunner(station_id=config.station_id, client=client, journal=journal,
                         keystore=keystore, transport_key=transport_key,
                         session_secrets=(tls_copy,))


def _wipe(secrets: StationSecrets) -> None:
    for secret in (secrets.drbg_state, secrets.transport_key, secrets.tls_key_pem):
        secret.wipe()
