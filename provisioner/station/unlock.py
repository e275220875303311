"""Unlock an enrolled station: unseal its secrets once and assemble a ready runner."""

from __future__ import annotations

from pathlib import Path

import httpx

from provisioner.crypto.sealed import load_station_secrets
from provisioner.crypto.secret import Secret
from provisioner.station.config import StationConfig, StationPaths
from provisioner.station.journal import Journal
from provisioner.station.keystore import KeyStore
from provisioner.station.runner import StationRunner
from provisioner.station.site_client import SiteClient, build_ssl_context
from provisioner.station.token_seal import token_config, unseal_from_token


def open_station(
    data_dir: Path, passphrase: str, *, transport: httpx.BaseTransport | None = None
) -> StationRunner:
    """Unseal the station in ``data_dir`` with ``passphrase`` (one scrypt) and return its runner.

    A station sealed on a PKCS#11 token takes the token's user PIN as ``passphrase``.

    The key stream resumes at the most advanced of the write-ahead state file and one past the
    highest index in the journal.

    Raises:
        StationConfigError: not enrolled, or the key stream state is missing or not ours.
        WrongPassphrase, Tampered, Truncated: the sealed file does not open.
    """
    paths = StationPaths(data_dir)
    config = StationConfig.load(paths.config)
    token = token_config(data_dir)
    if token is None:
        secrets = load_station_secrets(paths.secrets, passphrase)
    else:
        with Secret(passphrase.encode()) as pin:
            secrets = unseal_from_token(data_dir, config.station_id, token, pin)
    try:
        context = build_ssl_context(config.ca_cert_pem.encode(),
                                    config.client_cert_pem.encode(), secrets.tls_key_pem.reveal())
        journal = Journal(paths.journal)
        highest = journal.highest_index()
        keystore = KeyStore.unlock(paths.keystream, config.station_id, secrets.transport_key,
                                   secrets.drbg_state,
                                   floor_index=0 if highest is None else highest + 1)
        transport_key = Secret(secrets.transport_key.reveal())
    finally:
        secrets.wipe()
    client = SiteClient(config.site_url, context, transport=transport)
    return StationRunner(station_id=config.station_id, client=client, journal=journal,
                         keystore=keystore, transport_key=transport_key)
