"""Unlock an enrolled station: unseal its secrets once and assemble a ready runner."""

from __future__ import annotations

from pathlib import Path

import httpx

from provisioner import wire
from provisioner.crypto import envelope
from provisioner.crypto.sealed import load_station_secrets
from provisioner.crypto.secret import Secret
from provisioner.errors import JournalError, Refused, SiteProtocolError, SiteUnreachable
from provisioner.station.config import StationConfig, StationPaths
from provisioner.station.journal import MAC_INFO, Journal
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
    highest index in the journal. The journal's rows are authenticated under a key derived from
    the sealed secrets and its chain is checked against the head the key stream recorded; a
    journal that fails is raised as an alarm at the site (best effort: the check repeats at
    every start until the journal is restored or the station re-enrolled).

    Raises:
        StationConfigError: not enrolled, or the key stream state is missing or not ours.
        WrongPassphrase, Tampered, Truncated: the sealed file does not open.
        JournalError: the journal is forged, changed, missing or rolled back.
    """
    paths = StationPaths(data_dir)
    config = StationConfig.load(paths.config)
    token = token_config(data_dir)
    if token is None:
        secrets = load_station_secrets(paths.secrets, passphrase)
    else:
        with Secret(passphrase.encode()) as pin:
            secrets = unseal_from_token(data_dir, config.station_id, token, pin)
    journal: Journal | None = None
    try:
        context = build_ssl_context(config.ca_cert_pem.encode(),
                                    config.client_cert_pem.encode(), secrets.tls_key_pem.reveal())
        client = SiteClient(config.site_url, context, transport=transport)
        try:
            with envelope.derive_key(secrets.transport_key, MAC_INFO) as mac_key:
                journal = Journal(paths.journal, mac_key)
            highest = journal.highest_index()
            keystore = KeyStore.unlock(paths.keystream, config.station_id, secrets.transport_key,
                                       secrets.drbg_state,
                                       floor_index=0 if highest is None else highest + 1,
                                       journal_head=journal.head)
            journal.check_anchor(keystore.recorded_head)
        except JournalError as exc:
            if journal is not None:
                journal.close()
            raise _alarmed(client, exc) from exc
        transport_key = Secret(secrets.transport_key.reveal())
    finally:
        secrets.wipe()
    return StationRunner(station_id=config.station_id, client=client, journal=journal,
                         keystore=keystore, transport_key=transport_key)


def _alarmed(client: SiteClient, exc: JournalError) -> JournalError:
    """Raise ``exc`` as an alarm at the site; return it, saying whether the site has it."""
    alarm = wire.StationAlarm(code=wire.AlarmCode(exc.code), detail=wire.printable(str(exc), 500))
    try:
        client.raise_alarm(alarm)
    except (SiteUnreachable, SiteProtocolError, Refused) as failure:
        said = f"the site was NOT told ({failure}); it will be at the next start"
    else:
        said = "the site has recorded an alarm"
    finally:
        client.close()
    return JournalError(f"{exc} — {said}; restore the journal or re-enrol the station",
                        code=exc.code)
