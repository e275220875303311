"""Consume a station's one-time enrolment at the site: the first confirmation wins.

A station created by ``station add`` is ``pending``; its certificate opens no station
endpoint except ``POST /v1/enrolment``. The first call (over mTLS with the bundle's client
certificate, so only a holder of bundle *and* one-time passphrase can make it) activates the
station and records the call's ``request_id``; the same ``request_id`` again (a retry after a
lost answer) gets the same answer. Any other call means the bundle was opened a second time:
it is refused with ``enrolment_reused``, the station is suspended (its DRBG state and TLS key
are now known to two parties) and ``alarm_enrolment_reused`` is audited.
"""

from __future__ import annotations

import hmac
from datetime import UTC

from provisioner.audit.chain import AuditEvent
from provisioner.errors import EnrolmentReused, StationInactive
from provisioner.site.context import SiteContext
from provisioner.site.db import repo
from provisioner.site.db.engine import transaction
from provisioner.wire import EnrolmentConfirmation, EnrolmentConfirmed

PENDING = "pending"


def confirm_enrolment(
    ctx: SiteContext, station_id: str, request: EnrolmentConfirmation
) -> EnrolmentConfirmed:
    """Activate a pending station once, or raise (and audit) the refusal.

    Raises:
        EnrolmentReused: the enrolment was already confirmed by another call (alarm, station
            suspended). StationInactive: the station is unknown, suspended or revoked.
    """
    with transaction(ctx.factory) as session:
        station = repo.lock_station(session, station_id)
        if station is None:
            raise StationInactive(f"station {station_id} is not enrolled")
        now = ctx.clock()
        if station.status == PENDING:
            station.status = "active"
            station.enrolled_at = now
            station.enrolment_request_id = request.request_id
            repo.append_audit(session, signer=ctx.signer, now=now,
                              actor=f"station:{station_id}",
                              event=AuditEvent.station_enrolment_confirmed,
                              data={"station_id": station_id, "request_id": request.request_id})
            return EnrolmentConfirmed(station_id=station_id, status=station.status,
                                      enrolled_at=now)
        if station.enrolled_at is None:
            raise StationInactive(f"station {station_id} is {station.status}")
        recorded = station.enrolment_request_id or ""
        if hmac.compare_digest(
            recorded.encode(), request.request_id.encode()
        ):
            if station.status != "active":
                raise StationInactive(f"station {station_id} is {station.status}")
            enrolled_at = station.enrolled_at
            return EnrolmentConfirmed(
                station_id=station_id, status=station.status,
                enrolled_at=enrolled_at if enrolled_at.tzinfo else enrolled_at.replace(tzinfo=UTC),
            )
    refusal = EnrolmentReused(
        f"station {station_id}'s one-time enrolment was already used; a second bench opened "
        "its bundle, so the station is suspended"
    )
    _raise_alarm(ctx, station_id, request, refusal)
    raise refusal


def _raise_alarm(
    ctx: SiteContext, station_id: str, request: EnrolmentConfirmation, refusal: EnrolmentReused
) -> None:
    with transaction(ctx.factory) as session:
        station = repo.lock_station(session, station_id)
        before = None if station is None else station.status
        if station is not None and station.status == "active":
            station.status = "suspended"
        repo.append_audit(session, signer=ctx.signer, now=ctx.clock(),
                          actor=f"station:{station_id}", event=AuditEvent.alarm_enrolment_reused,
                          data={"code": refusal.code, "detail": refusal.detail,
                                "station_id": station_id, "request_id": request.request_id,
                                "status_before": before,
                                "station_status": None if station is None else station.status})
