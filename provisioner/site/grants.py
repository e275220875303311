"""Issue and complete grants: design §3 steps 3 and 5, each in one transaction."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hex_generator import patch
from provisioner.audit.chain import AuditEvent, checked_data
from provisioner.crypto import envelope
from provisioner.errors import (
    BadSignature,
    DuplicateChip,
    GrantAlreadyCompleted,
    GrantExpired,
    GrantNotFound,
    InvalidRequest,
    OrderNotFound,
    ProfileError,
    QuotaExhausted,
    Refused,
    StationInactive,
)
from provisioner.site.alarms import audit_grant_refusal
from provisioner.site.catalogue import check_firmware_profile, firmware_manifest
from provisioner.site.context import (
    SiteContext,
    Template,
    device_key_aad,
    transport_aad,
)
from provisioner.site.db import grant_rows, repo
from provisioner.site.db.engine import reading
from provisioner.site.db.models import Device, Grant
from provisioner.site.policy import (
    ChipSnapshot,
    OrderSnapshot,
    StationSnapshot,
    decide_completion,
    decide_grant,
    require_active_station,
)
from provisioner.site.reconcile import (
    RELEASED,
    refuse_released,
    release_expired,
    release_reservation,
)
from provisioner.site.sessions import session_operator, token_digest
from provisioner.wire import (
    FIRMWARE_ENCODING,
    AttemptResult,
    CompleteRequest,
    CompleteResponse,
    DeviceStatus,
    GrantRequest,
    GrantResponse,
    template_aad,
)

GRANT_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """Per-grant material computed before the order lock is taken."""

    device_id: int
    wrapped_key: bytes
    image_sha256: str
    key_size_bytes: int


def _firmware_facts(
    conn: Connection | Session, firmware_id: str
) -> grant_rows.FirmwareFacts:
    facts = grant_rows.firmware_facts(conn, firmware_id)
    if facts is None:
        raise OrderNotFound(f"firmware {firmware_id} named by an order is missing")
    return facts


def _known_firmware(
    found: dict[str, grant_rows.FirmwareFacts], firmware_id: str
) -> grant_rows.FirmwareFacts:
    facts = found.get(firmware_id)
    if facts is None:
        raise OrderNotFound(f"firmware {firmware_id} named by an order is missing")
    return facts


def _check_order_firmware(
    order: grant_rows.OrderRow, facts: list[grant_rows.FirmwareFacts]
) -> None:
    """Refuse an order whose firmware rows were registered for another profile (defence in depth:
    ``create_order`` refuses this, so it means an old order or a changed database)."""
    for row in facts:
        check_firmware_profile(row, order.profile)


def _firmware(ctx: SiteContext, conn: Connection | Session, firmware_id: str) -> Template:
    """Return the archive entry ``firmware_id`` as :func:`_checked_firmware` does."""
    return _checked_firmware(ctx, conn, _firmware_facts(conn, firmware_id))


def _checked_firmware(
    ctx: SiteContext, conn: Connection | Session, facts: grant_rows.FirmwareFacts
) -> Template:
    """Return an archive entry (cached or unwrapped), its manufacturer signature checked.

    Checked on every use, not only when stored: a row whose signature, digest or fields were
    changed in the database, or a cached text that no longer matches the row, is refused.

    Raises:
        BadSignature: the signature does not cover the row, or the text's digest differs.
    """
    # A row whose facts this process already checked is not checked again (one Ed25519
    # verify and one SHA-256 of the text less per use); any changed field is a new key.
    firmware_id = facts.firmware_id
    template = ctx.firmware.cached(firmware_id)
    if template is not None and ctx.firmware.is_verified(facts.key()):
        return template
    ctx.signer.verify_key.verify(
        firmware_manifest(facts.kind, facts.product, facts.version, facts.sha256),
        bytes.fromhex(facts.signature), f"firmware {firmware_id}")
    if template is None:
        wrapped = grant_rows.firmware_bytes(conn, firmware_id)
        if wrapped is None:
            raise OrderNotFound(f"firmware {firmware_id} named by an order is missing")
        template = ctx.firmware.firmware(firmware_id, wrapped)
    if not hmac.compare_digest(hashlib.sha256(template.ihex).hexdigest(), facts.sha256):
        raise BadSignature(ctx.signer.key_id, f"firmware {firmware_id} digest")
    ctx.firmware.mark_verified(facts.key())
    return template


def _prepare(
    ctx: SiteContext, template: Template, station: grant_rows.StationRow,
    order: grant_rows.OrderRow, device_id: int, drbg_index: int,
) -> _Prepared:
    """Derive the key, patch the template in memory, digest it and wrap the key."""
    profile = ctx.firmware.profile(order.profile)
    if profile.sha256 != order.profile_sha256:
        # The profile recorded with the order is evidence; a changed file is not used silently.
        raise ProfileError(
            order.profile, "", f"changed since order {order.order_id} was created "
            f"(sha256 {profile.sha256[:16]}…, order recorded {order.profile_sha256[:16]}…)",
        )
    layout = profile.patch_layout()
    with ctx.keystreams.key_at(
        station.station_id, station.wrapped_seed, drbg_index, profile.key_size_bytes
    ) as key:
        patched = patch(template.image, layout, device_id, key.reveal())
        wrapped = ctx.keys.wrap(key.reveal(), device_key_aad(device_id, drbg_index))
    try:
        digest = patched.sha256(layout.image_start, layout.image_end, layout.fill_byte).hex()
    finally:
        patched.wipe()
    return _Prepared(device_id, wrapped, digest, profile.key_size_bytes)


def _seal(
    ctx: SiteContext, conn: Connection, station: grant_rows.StationRow,
    order: grant_rows.OrderRow, grant_id: str, device_id: int, drbg_index: int,
    expires_at: datetime, facts: dict[str, grant_rows.FirmwareFacts] | None = None,
) -> GrantResponse:
    """Build a grant's response, sealing its firmware (deflated once per process, see
    ``crypto.grant_firmware``) under the station's transport key."""
    profile = ctx.firmware.profile(order.profile)
    sealed: dict[str, str | None] = {"template": None, "application": None}
    with ctx.keys.unwrap(
        station.wrapped_transport_key, transport_aad(station.station_id)
    ) as transport_key:
        for kind, firmware_id in (("template", order.bootloader_id),
                                  ("application", order.application_id)):
            if firmware_id is None:
                continue
            row = (facts or {}).get(firmware_id) or _firmware_facts(conn, firmware_id)
            deflated = _checked_firmware(ctx, conn, row).deflated
            blob = envelope.encrypt(transport_key, deflated,
                                    template_aad(kind, grant_id, device_id))
            sealed[kind] = base64.b64encode(blob).decode("ascii")
    return GrantResponse(
        grant_id=grant_id, order_id=order.order_id, device_id=device_id,
        drbg_index=drbg_index, key_size_bytes=profile.key_size_bytes,
        profile=order.profile, profile_sha256=order.profile_sha256,
        template=sealed["template"] or "", application=sealed["application"],
        firmware_encoding=FIRMWARE_ENCODING,
        expires_at=_utc(expires_at),
    )


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; the site stores UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def issue_grant(
    ctx: SiteContext, station_id: str, token: str, order_id: str, request: GrantRequest, *,
    fingerprint: str,
) -> GrantResponse:
    """Grant a device ID to a chip, or raise the refusal (audited, but for a station that
    is not active or not the caller's).

    One transaction: station and chip row locks, order row lock, policy, device + grant rows,
    station's next index, order's reserved count, audit entry. The caller's certificate
    (``fingerprint``, SHA-256 of its DER) must be the station's and the station active, both
    read under its row lock before anything else. Repeating a ``request_id``
    returns the same grant. The key stream is moved to the index first, before any lock is
    taken. An order out of quota first releases its expired reservations (audited) and
    decides once more, so an abandoned grant never holds a unit past its ``expires_at``.
    """
    try:
        _warm_key_stream(ctx, station_id, request.drbg_index)
        with ctx.engine.connect() as conn:
            try:
                with conn.begin():
                    return _issue(ctx, conn, station_id, fingerprint, token, order_id, request)
            except QuotaExhausted:
                if not release_expired(ctx, order_id=order_id):
                    raise
                with conn.begin():
                    return _issue(ctx, conn, station_id, fingerprint, token, order_id, request)
    except IntegrityError as exc:
        # Another grant inserted this chip at the same instant: the unique chip_uid decided.
        refusal: Refused = DuplicateChip(f"chip {request.chip_uid} was reserved concurrently")
        audit_grant_refusal(ctx, station_id, order_id, request, refusal, token)
        raise refusal from exc
    except StationInactive:
        # Not audited, as at the gate: the station's status change was, when it was made, and
        # a stopped station's requests cost the site one statement each, not a transaction.
        raise
    except Refused as refusal:
        audit_grant_refusal(ctx, station_id, order_id, request, refusal, token)
        raise


def _warm_key_stream(ctx: SiteContext, station_id: str, drbg_index: int) -> None:
    """Fast-forward the station's cached key stream to ``drbg_index`` outside any lock.

    Only for an index the policy can grant (within the window past the station's next index);
    anything else is refused in the transaction. A stream this process holds at most a
    window behind moves on without a database read (a station's next grant); otherwise the
    station's next index is read first, without a lock. Under the locks the key is then one
    DRBG step away, unless another process moved the station on meanwhile.
    """
    window = ctx.settings.index_window
    if ctx.keystreams.advance_cached(station_id, drbg_index, window=window):
        return
    with reading(ctx.engine) as conn:
        station = grant_rows.read_station(conn, station_id)
    if station is not None and 0 <= drbg_index - station.next_index <= window:
        ctx.keystreams.advance(station_id, station.wrapped_seed, drbg_index)


def _check_caller(found: tuple[str, str] | None, station_id: str, fingerprint: str) -> None:
    """Refuse a request unless ``station_id`` is enrolled, active and holds the certificate
    ``fingerprint`` the request came with (``found``: its status and fingerprint, as read)."""
    if found is None:
        raise StationInactive(f"station {station_id} is not enrolled")
    status, enrolled_fingerprint = found
    if enrolled_fingerprint != fingerprint:
        raise StationInactive(f"the client certificate is not station {station_id}'s")
    require_active_station(station_id, status)


def _issue(
    ctx: SiteContext, conn: Connection, station_id: str, fingerprint: str, token: str,
    order_id: str, request: GrantRequest,
) -> GrantResponse:
    now = ctx.clock()
    facts = grant_rows.request_facts(conn, token_sha256=token_digest(token),
                                     station_id=station_id, request_id=request.request_id,
                                     order_id=order_id, chip_uid=request.chip_uid)
    station = facts.station
    if station is None:
        raise StationInactive(f"station {station_id} is not enrolled")
    _check_caller((station.status, station.cert_fingerprint), station_id, fingerprint)
    operator_id = session_operator(facts.session, station_id, now)
    order, existing = facts.order, facts.existing
    if order is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    if existing is not None:
        if (existing.order_id, existing.chip_uid, existing.drbg_index) != (
            order_id, request.chip_uid, request.drbg_index
        ):
            raise InvalidRequest(
                f"request_id {request.request_id} was already used for a different grant"
            )
        return _seal(ctx, conn, station, order, existing.grant_id, existing.device_id,
                     existing.drbg_index, existing.expires_at, facts.firmware)
    # Decide once without the order lock (refusals write nothing), do the costly work and
    # write the chip's rows, and take the order's row lock last: it is held only for the
    # quota decision, the counter and the audit entry. A chip seen before was row-locked
    # with the facts; a new chip's unique chip_uid makes a concurrent insert of the same chip
    # wait and then fail (duplicate_chip).
    chip = facts.chip
    chip_before = ChipSnapshot(request.chip_uid) if chip is None else ChipSnapshot(
        request.chip_uid, *chip)
    # The policy asks only whether this station is among the allowed ones.
    allowed = frozenset({station_id}) if facts.station_allowed else frozenset[str]()
    snapshot = OrderSnapshot(order.order_id, order.status, order.authorised_quantity,
                             order.produced, order.reserved, allowed)
    station_before = StationSnapshot(station.station_id, station.status, station.next_index)
    decision = decide_grant(snapshot, station_before, chip_before, request.drbg_index,
                            index_window=ctx.settings.index_window)
    firmware = [_known_firmware(facts.firmware, firmware_id)
                for firmware_id in (order.bootloader_id, order.application_id)
                if firmware_id is not None]
    _check_order_firmware(order, firmware)
    device_id = decision.device_id or grant_rows.allocate_device_id(conn)
    template = _checked_firmware(ctx, conn, facts.firmware[order.bootloader_id])
    prepared = _prepare(ctx, template, station, order, device_id, request.drbg_index)
    grant_id = f"g-{secrets.token_hex(12)}"
    response = _seal(ctx, conn, station, order, grant_id, device_id, request.drbg_index,
                     now + GRANT_LIFETIME, facts.firmware)
    grant_rows.store_grant(
        conn, new_device=chip is None, grant_id=grant_id, request_id=request.request_id,
        device_id=device_id, chip_uid=request.chip_uid, order_id=order_id,
        station_id=station_id, drbg_index=request.drbg_index, operator_id=operator_id,
        wrapped_key=prepared.wrapped_key, image_sha256=prepared.image_sha256, now=now,
        expires_at=response.expires_at)
    # The entry's data is checked before the order lock: under it, only link, hash and sign.
    audited = checked_data({
        "grant_id": grant_id, "request_id": request.request_id, "order_id": order_id,
        "station_id": station_id, "device_id": device_id, "chip_uid": request.chip_uid,
        "drbg_index": request.drbg_index, "operator_id": operator_id,
        "profile_sha256": order.profile_sha256, "image_sha256": prepared.image_sha256,
    })
    locked = repo.reserve_unit(conn, order_id, allowed)
    if locked is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    order_before, audit_head = locked
    decide_grant(order_before, station_before, chip_before, request.drbg_index,
                 index_window=ctx.settings.index_window)
    repo.write_audit(conn, audit_head, signer=ctx.signer, now=now,
                     actor=f"station:{station_id}", event=AuditEvent.grant_issued, data=audited)
    return response


_COMPLETION_EVENTS = {
    DeviceStatus.programmed: AuditEvent.device_programmed,
    DeviceStatus.suspect: AuditEvent.device_suspect,
    DeviceStatus.failed: AuditEvent.device_failed,
    DeviceStatus.quarantined: AuditEvent.device_quarantined,
}


def complete_grant(
    ctx: SiteContext, station_id: str, token: str, grant_id: str, request: CompleteRequest, *,
    fingerprint: str,
) -> CompleteResponse:
    """Record a grant's outcome; repeating the same ``request_id`` returns the same answer.

    The caller's certificate (``fingerprint``) must be the station's and the station active,
    read in the same statement as the grant.

    A grant past its ``expires_at`` is refused (``grant_expired``): its reservation is
    released in the same transaction (audited, with what the station reported). Locks, in
    order: grant, device, order, audit head; the order's lock is taken only after the
    device and grant rows are written.
    """
    with ctx.engine.begin() as conn:
        now = ctx.clock()
        facts = grant_rows.completion_facts(conn, station_id=station_id,
                                            token_sha256=token_digest(token), grant_id=grant_id)
        _check_caller(facts.station, station_id, fingerprint)
        session_operator(facts.session, station_id, now)
        grant, device = facts.grant, facts.device
        if grant is None or grant.station_id != station_id:
            raise GrantNotFound(f"grant {grant_id} does not exist for station {station_id}")
        if device is None:
            raise GrantNotFound(f"grant {grant_id} has no device row")
        if grant.result is not None:
            if grant.complete_request_id == request.request_id:
                if grant.result == RELEASED:  # a retried late completion: refused, audited once
                    raise GrantExpired(f"grant {grant_id} expired and its reservation was "
                                       "released")
                return CompleteResponse(
                    grant_id=grant_id, device_id=device.device_id,
                    status=DeviceStatus(device.status), attempts=device.attempts,
                )
            if grant.result != RELEASED:
                raise GrantAlreadyCompleted(f"grant {grant_id} was completed as {grant.result}")
        if grant.result != RELEASED and _utc(grant.expires_at) > now:
            return _record_completion(conn, ctx, now, grant, device, request)
        expired = _refuse_late(conn, ctx, now, grant_id, request)
    raise expired


def _refuse_late(
    conn: Connection, ctx: SiteContext, now: datetime, grant_id: str, request: CompleteRequest
) -> GrantExpired:
    """A completion of a released or expired grant (rows locked): the reconcile code path."""
    with Session(bind=conn) as session:
        grant = session.get(Grant, grant_id)  # both rows are locked by this transaction
        device = None if grant is None else session.get(Device, grant.device_id)
        if grant is None or device is None:
            raise GrantNotFound(f"grant {grant_id} has no device row")
        order = repo.lock_order(session, grant.order_id)
        if order is None:
            raise OrderNotFound(f"order {grant.order_id} does not exist")
        if grant.result == RELEASED:
            expired = refuse_released(session, ctx, now, grant, device, reported=request)
        else:
            expired = release_reservation(session, ctx, now, grant, device, order,
                                          reported=request)
        session.flush()
    return expired


def _record_completion(
    conn: Connection, ctx: SiteContext, now: datetime, grant: grant_rows.LockedGrant,
    device: grant_rows.LockedDevice, request: CompleteRequest,
) -> CompleteResponse:
    reported = request.image_sha256 or ""
    matches = hmac.compare_digest(reported.encode(), device.image_sha256.encode())
    outcome = decide_completion(
        succeeded=request.result == AttemptResult.success, digest_matches=matches,
        attempts=device.attempts,
    )
    grant_rows.record_outcome(
        conn, grant_id=grant.grant_id, device_id=device.device_id, status=outcome.status,
        attempts=outcome.attempts, result=request.result, request_id=request.request_id,
        now=now)
    settled = repo.settle_unit(conn, grant.order_id, produced_delta=outcome.produced_delta,
                               reserved_delta=outcome.reserved_delta)
    if settled is None:
        raise OrderNotFound(f"order {grant.order_id} does not exist")
    profile, head = settled
    level = ctx.firmware.profile(profile).readout_protection.level
    data: dict[str, object] = {
        "grant_id": grant.grant_id, "device_id": device.device_id,
        "chip_uid": device.chip_uid, "order_id": grant.order_id,
        "station_id": grant.station_id, "operator_id": grant.operator_id,
        "drbg_index": grant.drbg_index, "result": request.result.value,
        "status": outcome.status.value, "attempts": outcome.attempts,
        "image_sha256": request.image_sha256, "expected_sha256": device.image_sha256,
        "verified": request.verified,
        "protection_level": level if request.protected else 0,
        "timings_ms": {name: round(value) for name, value in sorted(request.timings_ms.items())},
        "error_code": request.error_code,
    }
    entries: list[tuple[AuditEvent, dict[str, object]]] = [
        (_COMPLETION_EVENTS[outcome.status], data)]
    if outcome.status == DeviceStatus.suspect:
        entries.append((AuditEvent.alarm_digest_mismatch, {
            **data, "detail": "the board reported another image digest than the site "
                              "expects: device is suspect"}))
    elif outcome.status == DeviceStatus.quarantined:
        entries.append((AuditEvent.alarm_chip_quarantined, {
            **data, "detail": f"chip quarantined after {outcome.attempts} failed attempts"}))
    for event, facts in entries:
        entry = repo.write_audit(conn, head, signer=ctx.signer, now=now,
                                 actor=f"station:{grant.station_id}", event=event, data=facts)
        head = repo.AuditHeadState(entry.seq, entry.hash)
    return CompleteResponse(
        grant_id=grant.grant_id, device_id=device.device_id, status=outcome.status,
        attempts=outcome.attempts,
    )
