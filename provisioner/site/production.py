"""The production report from the live site database, cross-checked against the device table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select

from provisioner.audit.chain import AuditEntry, AuditEvent
from provisioner.audit.checkpoint import is_signed
from provisioner.audit.report import Alarm, Filter, ProductionReport, build_report
from provisioner.audit.report_render import Provenance
from provisioner.errors import ChainBroken
from provisioner.site.audit_facts import record
from provisioner.site.audit_trail import verify_site_chain
from provisioner.site.context import SiteContext
from provisioner.site.db import repo
from provisioner.site.db.engine import transaction
from provisioner.site.db.models import AuditRow, Device, Order
from provisioner.wire import DeviceStatus

_BATCH = 20_000
_MAX_DETAILED = 20


@dataclass(frozen=True, slots=True)
class SiteReport:
    """A live report and where its numbers come from."""

    report: ProductionReport
    provenance: Provenance


def _entries(ctx: SiteContext, last_seq: int) -> Iterator[AuditEntry]:
    """Stream entries up to ``last_seq`` in seq order, fields the report reads only."""
    columns = (AuditRow.seq, AuditRow.time, AuditRow.event, AuditRow.data)
    query = select(*columns).where(AuditRow.seq <= last_seq).order_by(AuditRow.seq)
    decode = json.loads
    # Core rows streamed in batches: no ORM objects for a million entries.
    with ctx.engine.connect() as conn:
        result = conn.execution_options(yield_per=_BATCH).execute(query)
        for seq, time, event, data in result:
            yield AuditEntry(seq, time, "", event, decode(data), "", "", "", "")


def _disagreements(ctx: SiteContext, report: ProductionReport, where: Filter) -> list[str]:
    """Compare the chain's counts and final device states with the site's tables."""
    found = []
    with ctx.factory() as session:
        if where.from_day is None and where.to_day is None:
            orders = session.scalars(select(Order)).all()
            for order in orders:
                if where.order_id not in (None, order.order_id):
                    continue
                counts = report.by_order.get(order.order_id)
                produced = report.produced(counts) if counts else 0
                reserved = report.open_reservations(counts) if counts else 0
                if (order.produced, order.reserved) != (produced, reserved):
                    found.append(
                        f"order {order.order_id}: order table says {order.produced} produced, "
                        f"{order.reserved} reserved; audit chain says {produced}, {reserved}")
        statuses = {row[0]: row[1] for row in session.execute(
            select(Device.device_id, Device.status))}
        per_status = {row[0]: int(row[1]) for row in session.execute(
            select(Device.status, func.count()).group_by(Device.status))}
    for device_id, status in sorted(report.final_status.items()):
        if statuses.get(device_id) != status:
            found.append(f"device {device_id}: device table says {statuses.get(device_id)}, "
                         f"audit chain says {status}")
    if where.order_id is None and where.from_day is None and where.to_day is None:
        chain_status = list(report.final_status.values())
        for status in (DeviceStatus.programmed, DeviceStatus.suspect, DeviceStatus.quarantined):
            in_chain = chain_status.count(status.value)
            if per_status.get(status.value, 0) != in_chain:
                found.append(f"{per_status.get(status.value, 0)} devices {status.value} in the "
                             f"device table, {in_chain} in the audit chain")
    return found


def site_report(ctx: SiteContext, where: Filter, *, verify: bool = False) -> SiteReport:
    """Build the report from the database; each disagreement with the tables is an alarm.

    The head is always checked (signed, and naming the newest stored entry); ``verify``
    verifies the whole chain first. Disagreements are audited as
    ``alarm_report_disagreement`` and listed with the report's alarms.

    Raises:
        ChainBroken: ``verify`` found the chain damaged, or the head does not match it.
    """
    key = ctx.signer.verify_key
    if verify:
        head = verify_site_chain(ctx).head
        verdict = "chain, checkpoints and signed head verified"
    else:
        with ctx.factory() as session:
            head = repo.signed_head(session)
            newest = session.execute(select(AuditRow.seq, AuditRow.hash)
                                     .order_by(AuditRow.seq.desc()).limit(1)).first()
        if newest is None or (newest.seq, newest.hash) != (head.seq, head.hash):
            raise ChainBroken((newest.seq if newest else 0) + 1, "truncated")
        if not is_signed(head, key):
            raise ChainBroken(head.seq, "head_forged")
        verdict = ("signed head matches the newest entry; chain not re-verified "
                   "(add --verify)")
    report = build_report(_entries(ctx, head.seq), where)
    problems = _disagreements(ctx, report, where)
    if len(problems) > _MAX_DETAILED:
        # A wholesale mismatch (a restored or foreign table) is one finding, not a flood.
        rest = len(problems) - _MAX_DETAILED
        problems = [*problems[:_MAX_DETAILED], f"... and {rest} more disagreements"]
    if problems:
        with transaction(ctx.factory) as session:
            now = ctx.clock()
            for detail in problems:
                entry = record(session, ctx, now=now, actor="site:report",
                               event=AuditEvent.alarm_report_disagreement,
                               data={"detail": detail})
                report.alarms.append(Alarm(entry.seq, entry.time, entry.event, "", detail))
    provenance = Provenance(f"site database of {ctx.site_name!r}", verdict, key.key_id,
                            head.seq, head.hash)
    return SiteReport(report, provenance)
