"""Alarms a station raises about itself (a forged, missing or rolled-back journal): audited."""

from __future__ import annotations

from provisioner.audit.chain import AuditEvent
from provisioner.site.context import SiteContext
from provisioner.site.db import repo
from provisioner.site.db.engine import transaction
from provisioner.wire import AlarmRecorded, StationAlarm


def record_alarm(ctx: SiteContext, station_id: str, alarm: StationAlarm) -> AlarmRecorded:
    """Append the station's alarm to the audit log and return the entry's seq."""
    with transaction(ctx.factory) as session:
        entry = repo.append_audit(
            session, signer=ctx.signer, now=ctx.clock(), actor=f"station:{station_id}",
            event=AuditEvent.alarm_station_journal,
            data={"station_id": station_id, "code": alarm.code.value, "detail": alarm.detail},
        )
    return AlarmRecorded(code=alarm.code, audit_seq=entry.seq)
