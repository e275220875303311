"""Audit a refused grant, raising the alarm its refusal stands for (and acting on a clone)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from provisioner.audit.chain import AuditEvent
from provisioner.errors import (
    ChipQuarantined,
    DuplicateChip,
    FirmwareProfileMismatch,
    IndexReused,
    Refused,
)
from provisioner.site.audit_facts import record
from provisioner.site.context import SiteContext
from provisioner.site.db import repo
from provisioner.site.db.engine import transaction
from provisioner.site.sessions import operator_for_token
from provisioner.wire import GrantRequest

# Refusals that are also alarms: someone tried what must never happen.
_ALARM_OF_REFUSAL: dict[type[Refused], AuditEvent] = {
    DuplicateChip: AuditEvent.alarm_duplicate_chip,
    FirmwareProfileMismatch: AuditEvent.alarm_firmware_profile_mismatch,
    IndexReused: AuditEvent.alarm_index_reused,
    ChipQuarantined: AuditEvent.alarm_chip_quarantined,
}


def _operator_or_none(session: Session, token: str | None, station_id: str, now: datetime
                      ) -> str | None:
    if token is None:
        return None
    try:
        return operator_for_token(session, token, station_id, now)
    except Refused:
        return None


def audit_grant_refusal(
    ctx: SiteContext, station_id: str, order_id: str, request: GrantRequest, refusal: Refused,
    token: str | None = None,
) -> None:
    """Append ``grant_refused`` (counted by code) and the alarm it stands for, if any, in one
    transaction of its own.

    An ``index_reused`` for an index this station was already granted for a *different* chip
    means a second bench runs the same station identity (a copied data directory or a bundle
    enrolled twice): both hold the same DRBG state, so every key the station derives from now
    on is known to the other bench. The station is suspended in the same transaction and
    ``alarm_station_cloned`` is written; the admin investigates, revokes and enrols anew.
    """
    alarm = _ALARM_OF_REFUSAL.get(type(refusal))
    with transaction(ctx.factory) as session:
        now = ctx.clock()
        data: dict[str, object] = {
            "code": refusal.code, "detail": refusal.detail, "order_id": order_id,
            "station_id": station_id,
            "operator_id": _operator_or_none(session, token, station_id, now),
            "request_id": request.request_id, "chip_uid": request.chip_uid,
            "drbg_index": request.drbg_index,
        }
        actor = f"station:{station_id}"
        record(session, ctx, now=now, actor=actor, event=AuditEvent.grant_refused, data=data)
        if isinstance(refusal, IndexReused):
            earlier = repo.find_grant_at_index(session, station_id, request.drbg_index)
            if earlier is not None and earlier.chip_uid != request.chip_uid:
                station = repo.lock_station(session, station_id)
                if station is not None and station.status == "active":
                    station.status = "suspended"
                alarm = AuditEvent.alarm_station_cloned
                data |= {
                    "granted_chip_uid": earlier.chip_uid,
                    "granted_request_id": earlier.request_id,
                    "station_status": None if station is None else station.status,
                    "detail": f"DRBG index {request.drbg_index} of station {station_id} was "
                              f"granted to chip {earlier.chip_uid} and is now asked for chip "
                              f"{request.chip_uid}: two benches share this station identity; "
                              "station suspended",
                }
        if alarm is not None:
            record(session, ctx, now=now, actor=actor, event=alarm, data=data)
