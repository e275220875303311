"""Admin operations behind `provisioner site …`: init, stations, operators, audit."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from provisioner.audit.chain import AuditEvent
from provisioner.crypto.keystream import generate_seed
from provisioner.crypto.pins import hash_pin
from provisioner.crypto.secret import Secret
from provisioner.crypto.secret_policy import MIN_PIN_CHARS, weakness
from provisioner.errors import InvalidRequest, StationInactive
from provisioner.hsm.errors import TokenError
from provisioner.site import audit_trail, keys
from provisioner.site.context import SiteContext, open_site, seed_aad, transport_aad, utc_now
from provisioner.site.db import migrate, repo
from provisioner.site.db.engine import make_engine, sqlite_url, transaction
from provisioner.site.db.models import Operator, Station
from provisioner.site.enrolment import new_passphrase, seal_station_bundle
from provisioner.site.keyprovider.config import TokenConfig
from provisioner.site.keyprovider.setup import create_file_keys, create_token_keys
from provisioner.site.sessions import sign_out_all
from provisioner.site.sitedir import SiteDir, SiteDirError, SiteSettings
from provisioner.wire import check_id

ADMIN = "admin"
STATION_STATUSES = ("active", "suspended", "revoked")  # "pending" until enrolment confirms


@dataclass(frozen=True, slots=True)
class InitResult:
    """Fingerprints printed by `site init`."""

    ca_fingerprint: str
    server_fingerprint: str
    signing_key_id: str


def init_site(
    site_dir: Path, *, site_name: str = "site", db_url: str | None = None,
    hosts: tuple[str, ...] = (), now: datetime | None = None,
    token: TokenConfig | None = None, pin: Secret | None = None,
) -> InitResult:
    """Create a site: settings, migrated DB, master key, Ed25519 key, CA, server certificate.

    With ``token`` the three keys are created (or adopted) on that PKCS#11 token, logged in
    with ``pin``; otherwise they are 0600 files in ``site_dir``.

    Raises:
        SiteDirError: the directory already holds a site.
        TokenError: module, token, PIN or key problem.
    """
    paths = SiteDir(site_dir)
    if paths.settings.exists():
        raise SiteDirError(site_dir, "already initialised")
    moment = now or utc_now()
    site_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(site_dir, 0o700)
    settings = SiteSettings(site_name, db_url or sqlite_url(str(paths.database.resolve())))
    engine = make_engine(settings.db_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    if token is None:
        create_file_keys(paths, site_name, moment)
    elif pin is None:
        raise TokenError("a PKCS#11 site needs the token PIN")
    else:
        create_token_keys(paths, token, pin, site_name, moment)
    paths.bundles.mkdir(mode=0o700, exist_ok=True)
    paths.write_settings(settings)
    ctx = open_site(site_dir, clock=lambda: moment, pin=pin)
    try:
        server = keys.issue_server_cert(ctx.keys.ca, site_name, list(hosts), moment)
        paths.server_cert.write_bytes(server.cert_pem)
        keys.write_private_file(paths.server_key, server.key_pem.reveal())
        server.key_pem.wipe()
        result = InitResult(keys.fingerprint(ctx.keys.ca.cert), keys.fingerprint(server.cert),
                            ctx.signer.key_id)
        audit(ctx, AuditEvent.site_initialised, {
            "site_name": site_name, "ca_fingerprint": result.ca_fingerprint,
            "server_fingerprint": result.server_fingerprint, "key_id": result.signing_key_id,
            "hosts": list(hosts), "keys": "pkcs11" if token else "files",
        })
    finally:
        ctx.close()
    return result


def audit(ctx: SiteContext, event: str, data: dict[str, object], actor: str = ADMIN) -> None:
    """Append one admin audit entry in its own transaction."""
    with transaction(ctx.factory) as session:
        repo.append_audit(session, signer=ctx.signer, now=ctx.clock(), actor=actor,
                          event=event, data=data)


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A new station: where its sealed bundle is, and the passphrase to print once."""

    station_id: str
    bundle_path: Path
    passphrase: str
    cert_fingerprint: str


def add_station(
    ctx: SiteContext, site_dir: Path, station_id: str, site_url: str, *,
    bundle_path: Path | None = None, scrypt_n: int = 2**15,
) -> Enrolment:
    """Enrol a station: seed, transport key, client certificate, sealed bundle, audit entry."""
    check_id("station id", station_id)
    paths = SiteDir(site_dir)
    now = ctx.clock()
    client = keys.issue_station_cert(ctx.keys.ca, ctx.site_name, station_id, now)
    passphrase = new_passphrase()
    target = bundle_path or paths.bundles / f"{station_id}.bundle"
    with generate_seed() as seed, Secret(os.urandom(32)) as transport_key:
        station = Station(
            station_id=station_id, cert_fingerprint=keys.fingerprint(client.cert),
            wrapped_seed=ctx.keys.wrap(seed.reveal(), seed_aad(station_id)),
            wrapped_transport_key=ctx.keys.wrap(transport_key.reveal(), transport_aad(station_id)),
            next_index=0, status="pending", created_at=now,
        )
        blob = seal_station_bundle(
            station_id=station_id, site_url=site_url, ca_cert_pem=paths.ca_cert.read_bytes(),
            client_cert_pem=client.cert_pem, client_key_pem=client.key_pem, seed=seed,
            transport_key=transport_key, passphrase=passphrase, scrypt_n=scrypt_n,
        )
    client.key_pem.wipe()
    with transaction(ctx.factory) as session:
        if session.get(Station, station_id) is not None:
            raise InvalidRequest(f"station {station_id} already exists")
        session.add(station)
        session.flush()
        repo.append_audit(session, signer=ctx.signer, now=now, actor=ADMIN,
                          event=AuditEvent.station_enrolled,
                          data={"station_id": station_id,
                                "cert_fingerprint": station.cert_fingerprint,
                                "site_url": site_url})
        keys.write_private_file(target, blob)
    return Enrolment(station_id, target, passphrase, station.cert_fingerprint)


@dataclass(frozen=True, slots=True)
class StationInfo:
    """One row of `station list`."""

    station_id: str
    status: str
    next_index: int
    cert_fingerprint: str


def list_stations(ctx: SiteContext) -> list[StationInfo]:
    """Return every station."""
    with ctx.factory() as session:
        rows = session.scalars(select(Station).order_by(Station.station_id))
        return [StationInfo(r.station_id, r.status, r.next_index, r.cert_fingerprint)
                for r in rows]


def set_station_status(ctx: SiteContext, station_id: str, status: str) -> None:
    """Suspend, revoke or reactivate a station (a revoked one stays revoked)."""
    if status not in STATION_STATUSES:
        raise InvalidRequest(f"station status must be one of {', '.join(STATION_STATUSES)}")
    with transaction(ctx.factory) as session:
        station = repo.lock_station(session, station_id)
        if station is None:
            raise StationInactive(f"station {station_id} is not enrolled")
        if station.status == "revoked" and status != "revoked":
            raise StationInactive(f"station {station_id} is revoked for good")
        if station.enrolled_at is None and status == "active":
            raise StationInactive(
                f"station {station_id} has not confirmed its one-time enrolment; it becomes "
                "active when `provisioner station enroll` runs with its bundle"
            )
        station.status = status
        event = {"suspended": AuditEvent.station_suspended,
                 "revoked": AuditEvent.station_revoked}.get(status, AuditEvent.station_reactivated)
        repo.append_audit(session, signer=ctx.signer, now=ctx.clock(), actor=ADMIN, event=event,
                          data={"station_id": station_id, "status": status})


def _checked_pin(pin: str) -> str:
    reason = weakness(pin, min_chars=MIN_PIN_CHARS)
    if reason is not None:
        raise InvalidRequest(f"PIN refused: it {reason}")
    return pin


def add_operator(ctx: SiteContext, operator_id: str, pin: str) -> None:
    """Create an operator with a scrypt PIN hash (id and PIN checked against the policy).

    Raises:
        InvalidRequest: a bad id, a weak PIN (``secret_policy``) or an existing operator.
    """
    check_id("operator id", operator_id)
    pin_hash = hash_pin(_checked_pin(pin))
    with transaction(ctx.factory) as session:
        if session.get(Operator, operator_id) is not None:
            raise InvalidRequest(f"operator {operator_id} already exists")
        session.add(Operator(operator_id=operator_id, pin_hash=pin_hash, failures=0,
                             created_at=ctx.clock()))
        session.flush()
        repo.append_audit(session, signer=ctx.signer, now=ctx.clock(), actor=ADMIN,
                          event=AuditEvent.operator_added, data={"operator_id": operator_id})


def reset_operator(ctx: SiteContext, operator_id: str, pin: str) -> None:
    """Set a new PIN, clear the lockout and end the operator's sessions."""
    pin_hash = hash_pin(_checked_pin(pin))
    with transaction(ctx.factory) as session:
        operator = session.get(Operator, operator_id, with_for_update=True)
        if operator is None:
            raise InvalidRequest(f"operator {operator_id} does not exist")
        operator.pin_hash = pin_hash
        operator.failures = 0
        operator.locked_until = None
        sign_out_all(session, operator_id)
        repo.append_audit(session, signer=ctx.signer, now=ctx.clock(), actor=ADMIN,
                          event=AuditEvent.operator_reset, data={"operator_id": operator_id})


def list_operators(ctx: SiteContext) -> list[tuple[str, int, datetime | None]]:
    """Return (operator_id, failures, locked_until) for every operator."""
    with ctx.factory() as session:
        rows = session.scalars(select(Operator).order_by(Operator.operator_id))
        return [(r.operator_id, r.failures, r.locked_until) for r in rows]


def export_audit(ctx: SiteContext, path: Path) -> int:
    """Write the whole audit chain as an export tar; return the number of entries."""
    return audit_trail.export_site_audit(ctx, path)


def verify_audit(ctx: SiteContext) -> int:
    """Verify the chain stored in the database against its signed head; return its length.

    Raises:
        ChainBroken: naming the first bad seq and how it is broken.
    """
    return len(audit_trail.verify_site_chain(ctx).entries)
