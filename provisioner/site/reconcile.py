"""Stale reservations: list what never completed (and suspect/quarantined devices), release
expired grants so an order's count is right again — audited, one code path for both the
``site reconcile`` command and a completion that arrives after its grant expired."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.audit.chain import AuditEvent
from provisioner.errors import GrantExpired
from provisioner.site.audit_facts import record
from provisioner.site.context import SiteContext
from provisioner.site.db import repo
from provisioner.site.db.engine import transaction
from provisioner.site.db.models import Device, Grant, Order
from provisioner.site.policy import decide_completion
from provisioner.wire import CompleteRequest, DeviceStatus

RELEASED = "released"  # a grant's result once its expired reservation was released
_LISTED = (DeviceStatus.reserved, DeviceStatus.suspect, DeviceStatus.quarantined)


@dataclass(frozen=True, slots=True)
class OpenItem:
    """A device the owner should look at: reserved (never completed), suspect or quarantined."""

    device_id: int
    chip_uid: str
    order_id: str
    station_id: str
    operator_id: str | None
    status: str
    age_s: int
    grant_id: str | None
    expired: bool


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _latest_grant(session: Session, device_id: int) -> Grant | None:
    return session.scalars(
        select(Grant).where(Grant.device_id == device_id)
        .order_by(Grant.created_at.desc(), Grant.drbg_index.desc())
    ).first()


def list_open(ctx: SiteContext, *, order_id: str | None = None) -> list[OpenItem]:
    """Return reserved, suspect and quarantined devices, oldest first, with age and station."""
    now = ctx.clock()
    query = select(Device).where(Device.status.in_([s.value for s in _LISTED]))
    if order_id is not None:
        query = query.where(Device.order_id == order_id)
    items = []
    with ctx.factory() as session:
        for device in session.scalars(query.order_by(Device.updated_at, Device.device_id)):
            grant = _latest_grant(session, device.device_id)
            expired = (device.status == DeviceStatus.reserved and grant is not None
                       and grant.result is None and _utc(grant.expires_at) <= now)
            items.append(OpenItem(
                device.device_id, device.chip_uid, device.order_id, device.station_id,
                None if grant is None else grant.operator_id, device.status,
                int((now - _utc(device.updated_at)).total_seconds()),
                None if grant is None else grant.grant_id, expired,
            ))
    return items


def release_expired(ctx: SiteContext, *, order_id: str | None = None) -> list[OpenItem]:
    """Release every expired reservation (of ``order_id``); return what was released.

    Each release is its own transaction, locking grant, device, order and audit head in the
    order the completion path uses.
    """
    released = []
    for item in list_open(ctx, order_id=order_id):
        if not item.expired or item.grant_id is None:
            continue
        with transaction(ctx.factory) as session:
            now = ctx.clock()
            grant = session.get(Grant, item.grant_id, with_for_update=True,
                                populate_existing=True)
            device = session.get(Device, item.device_id, with_for_update=True,
                                 populate_existing=True)
            if grant is None or device is None or grant.result is not None:
                continue  # completed or released meanwhile
            order = repo.lock_order(session, grant.order_id)
            if order is None or _utc(grant.expires_at) > now:
                continue
            release_reservation(session, ctx, now, grant, device, order, reported=None)
        released.append(item)
    return released


def _late_report(reported: CompleteRequest | None) -> dict[str, object]:
    if reported is None:
        return {}
    return {"reported_result": reported.result.value, "image_sha256": reported.image_sha256}


def refuse_released(
    session: Session, ctx: SiteContext, now: datetime, grant: Grant, device: Device, *,
    reported: CompleteRequest,
) -> GrantExpired:
    """Audit a completion for a grant whose reservation was already released; return it.

    Its ``request_id`` is kept, so a retry of the same request is refused without a second
    entry.
    """
    grant.complete_request_id = reported.request_id
    detail = f"grant {grant.grant_id} expired and its reservation was released"
    record(session, ctx, now=now, actor=f"station:{grant.station_id}",
           event=AuditEvent.grant_refused, data={
               "code": GrantExpired.code, "detail": detail, "grant_id": grant.grant_id,
               "device_id": device.device_id, "chip_uid": device.chip_uid,
               "order_id": grant.order_id, "station_id": grant.station_id,
               "operator_id": grant.operator_id, **_late_report(reported)})
    return GrantExpired(detail)


def release_reservation(
    session: Session, ctx: SiteContext, now: datetime, grant: Grant, device: Device,
    order: Order, *, reported: CompleteRequest | None,
) -> GrantExpired:
    """Release an expired grant's unit (rows locked by the caller); return the refusal.

    The attempt counts as failed (quarantine at the attempt cap); the station's late report,
    if any, is kept in the alarm so a board that was in fact programmed can be traced.
    """
    outcome = decide_completion(succeeded=False, digest_matches=False, attempts=device.attempts)
    device.status = outcome.status
    device.attempts = outcome.attempts
    device.updated_at = now
    order.reserved += outcome.reserved_delta
    grant.result = RELEASED
    grant.completed_at = now
    if reported is not None:
        grant.complete_request_id = reported.request_id
    session.flush()
    data: dict[str, object] = {
        "grant_id": grant.grant_id, "device_id": device.device_id, "chip_uid": device.chip_uid,
        "order_id": order.order_id, "station_id": grant.station_id,
        "operator_id": grant.operator_id, "drbg_index": grant.drbg_index,
        "status": outcome.status.value, "attempts": outcome.attempts,
        "expires_at": _utc(grant.expires_at).isoformat(), **_late_report(reported),
    }
    actor = "site:reconcile" if reported is None else f"station:{grant.station_id}"
    record(session, ctx, now=now, actor=actor, event=AuditEvent.reservation_released, data=data)
    detail = ("grant expired before its completion arrived; reservation released"
              if reported is not None else "grant expired without completion; released")
    record(session, ctx, now=now, actor=actor, event=AuditEvent.alarm_stale_reservation,
           data={**data, "detail": detail})
    if reported is not None:
        record(session, ctx, now=now, actor=actor, event=AuditEvent.grant_refused,
               data={**data, "code": GrantExpired.code, "detail": detail})
    return GrantExpired(f"grant {grant.grant_id} expired at {data['expires_at']}; "
                        "its reservation was released")
