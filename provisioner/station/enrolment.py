"""Enrol a station from a sealed bundle, consuming its one-time enrolment at the site.

Steps: open the bundle with the one-time passphrase (``open_enrolment_bundle``, so a wrong
passphrase or a file that is no bundle is reported before any new passphrase is asked for);
seal its secrets under the new station passphrase; confirm the enrolment at the site over mTLS
with the bundle's own client certificate (the first confirmation consumes the enrolment, any
later one is refused there with an alarm); then write ``station.json`` and destroy the bundle
file. A failed confirmation removes what was written, so the directory stays unenrolled.
"""

from __future__ import annotations

import os
import secrets as token
from collections.abc import Callable
from pathlib import Path

from provisioner.crypto.bundle import EnrolmentBundle, is_sealed_blob, open_bundle
from provisioner.crypto.sealed import StationSecrets, save_station_secrets
from provisioner.crypto.secret import Secret
from provisioner.crypto.secret_policy import MIN_PASSPHRASE_CHARS, weakness
from provisioner.errors import NotABundle, Refused, StationConfigError
from provisioner.station.config import StationConfig, StationPaths
from provisioner.station.keystore import KeyStore
from provisioner.station.site_client import SiteClient, build_ssl_context
from provisioner.station.token_seal import (
    TOKEN_CONFIG_NAME,
    TOKEN_SEALED_NAME,
    StationToken,
    seal_on_token,
)
from provisioner.wire import EnrolmentConfirmation, EnrolmentConfirmed

PENDING_NAME = "enrolment.pending"  # the confirmation's request id, until it is answered

Confirm = Callable[[EnrolmentBundle, str], EnrolmentConfirmed]


def check_not_enrolled(data_dir: Path) -> None:
    """Raise StationConfigError if ``data_dir`` already holds a station.

    A directory whose enrolment was interrupted after the confirmation was sent (the
    ``enrolment.pending`` marker is there) is not enrolled yet: enrolling it again with the
    same bundle resumes under the same request id.
    """
    paths = StationPaths(data_dir)
    interrupted = (data_dir / PENDING_NAME).exists()
    sealed = paths.secrets.exists() or (data_dir / TOKEN_SEALED_NAME).exists()
    if paths.config.exists() or (sealed and not interrupted):
        raise StationConfigError(str(data_dir), "already enrolled (remove it to enrol again)")


def _request_id(data_dir: Path) -> str:
    """Return the interrupted enrolment's request id, or record a new one durably."""
    marker = data_dir / PENDING_NAME
    if marker.exists():
        return marker.read_text(encoding="ascii").strip()
    request_id = f"enrol-{token.token_hex(12)}"
    with marker.open("w", encoding="ascii") as handle:
        handle.write(request_id + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return request_id


def open_enrolment_bundle(bundle_path: Path, one_time_passphrase: str) -> EnrolmentBundle:
    """Open the sealed bundle at ``bundle_path``.

    Raises:
        NotABundle: the file is no sealed bundle. WrongPassphrase, Tampered, Truncated,
            UnsupportedVersion: it is one but does not open. OSError: it cannot be read.
    """
    blob = bundle_path.read_bytes()
    if not is_sealed_blob(blob):
        raise NotABundle(str(bundle_path))
    return open_bundle(blob, one_time_passphrase, source=str(bundle_path))


def confirm_at_site(bundle: EnrolmentBundle, request_id: str) -> EnrolmentConfirmed:
    """Consume the one-time enrolment at the bundle's site (mTLS with the bundle's certificate).

    ``request_id`` is recorded in the data directory before the call; the client's retries and
    a resumed enrolment reuse it, so a lost answer is not mistaken for a second enrolment.

    Raises:
        EnrolmentReused, StationInactive: the site refuses. SiteUnreachable: no answer.
    """
    context = build_ssl_context(bundle.ca_cert_pem, bundle.client_cert_pem,
                                bundle.client_key_pem.reveal())
    client = SiteClient(bundle.site_url, context)
    try:
        return client.confirm_enrolment(EnrolmentConfirmation(request_id=request_id))
    finally:
        client.close()


def enroll_bundle(
    bundle: EnrolmentBundle,
    station_passphrase: str,
    data_dir: Path,
    *,
    scrypt_n: int = 2**15,
    confirm: Confirm = confirm_at_site,
    token: StationToken | None = None,
) -> StationConfig:
    """Enrol ``data_dir`` from an opened bundle; the bundle's secrets are wiped afterwards.

    With ``token`` the secrets are sealed on that PKCS#11 token (``station.token-sealed``)
    and ``station_passphrase`` is the token's user PIN.

    Writes ``station.sealed`` (0600, transport and TLS keys under ``station_passphrase``) and
    the DRBG working state encrypted under a key derived from the transport key
    (``keystore``), confirms at the site, then writes the public ``station.json``. The bundle
    never holds the seed, so neither does the station; the caller destroys the bundle file.

    Raises:
        StationConfigError: already enrolled, or the passphrase is too short.
        EnrolmentReused, StationInactive: the site refused (nothing is left in ``data_dir``).
        SiteUnreachable (or a crash): the answer is unknown; only the request id stays in
            ``data_dir``, and enrolling again with the same bundle resumes under it.
    """
    paths = StationPaths(data_dir)
    try:
        check_not_enrolled(data_dir)
        reason = None if token is not None else weakness(
            station_passphrase, min_chars=MIN_PASSPHRASE_CHARS)
        if reason is not None:
            raise StationConfigError(str(data_dir), f"station passphrase refused: it {reason}")
        config = StationConfig(
            station_id=bundle.station_id,
            site_url=bundle.site_url,
            ca_cert_pem=bundle.ca_cert_pem.decode("ascii"),
            client_cert_pem=bundle.client_cert_pem.decode("ascii"),
        )
        # The sealed file holds the bundle's own secrets (wiped with the bundle below); its
        # DRBG field stays empty so no stale state outlives a used index.
        sealed = StationSecrets(
            station_id=config.station_id, drbg_state=Secret(b""),
            transport_key=bundle.transport_key, tls_key_pem=bundle.client_key_pem,
        )
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        request_id = _request_id(data_dir)
        KeyStore.create(paths.keystream, config.station_id, bundle.transport_key,
                        bundle.drbg_state).close()
        if token is None:
            save_station_secrets(paths.secrets, sealed, station_passphrase, scrypt_n=scrypt_n)
        else:
            with Secret(station_passphrase.encode()) as pin:
                seal_on_token(data_dir, sealed, token, pin)
        try:
            confirm(bundle, request_id)
        except BaseException as exc:
            for written in (paths.secrets, paths.keystream, data_dir / TOKEN_SEALED_NAME,
                            data_dir / TOKEN_CONFIG_NAME):
                written.unlink(missing_ok=True)
            if isinstance(exc, Refused):
                (data_dir / PENDING_NAME).unlink(missing_ok=True)
            raise
    finally:
        bundle.wipe()
    config.save(paths.config)
    (data_dir / PENDING_NAME).unlink()
    return config


def destroy_bundle(path: Path) -> None:
    """Overwrite the used bundle file with zeros, flush it and remove it.

    The bundle is worthless once the site consumed its enrolment, but it still holds the
    station's keys under a passphrase an operator heard: it must not linger at the bench.
    On copy-on-write or flash storage the overwrite may not reach the old blocks; removal
    still takes the file away (a copy elsewhere is refused by the site, with an alarm).

    Raises:
        OSError: the file cannot be removed (read-only medium: destroy it by hand).
    """
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.write(bytes(size))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def enroll(
    bundle_path: Path,
    one_time_passphrase: str,
    station_passphrase: str,
    data_dir: Path,
    *,
    scrypt_n: int = 2**15,
    confirm: Confirm = confirm_at_site,
    token: StationToken | None = None,
) -> StationConfig:
    """Open the bundle, enrol ``data_dir`` from it, then destroy the bundle file.

    Raises:
        what :func:`open_enrolment_bundle`, :func:`enroll_bundle` and :func:`destroy_bundle`
        raise.
    """
    check_not_enrolled(data_dir)
    bundle = open_enrolment_bundle(bundle_path, one_time_passphrase)
    config = enroll_bundle(bundle, station_passphrase, data_dir, scrypt_n=scrypt_n,
                           confirm=confirm, token=token)
    destroy_bundle(bundle_path)
    return config
