"""The one way site code writes audit facts: one signed entry per event, in its transaction.

Shape for new events and alarms: add a member to ``audit.chain.AuditEvent`` (an ``alarm_``
prefix makes reports list it as an alarm), then call :func:`record` inside the transaction
that makes the change, with the ``FACT_FIELDS`` that apply (``station_id``, ``operator_id``,
``order_id``, ``device_id``, ``chip_uid``, ``detail`` …). A refused grant goes through
``site/alarms.audit_grant_refusal``: ``grant_refused`` with its ``code``, then the alarm the
refusal stands for (its ``_ALARM_OF_REFUSAL`` table).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from provisioner.audit.chain import AuditEntry, AuditEvent
from provisioner.site.context import SiteContext
from provisioner.site.db import repo


def record(
    session: Session, ctx: SiteContext, *, now: datetime, actor: str, event: AuditEvent,
    data: Mapping[str, object],
) -> AuditEntry:
    """Append one signed entry for ``event`` in the caller's transaction."""
    return repo.append_audit(session, signer=ctx.signer, now=now, actor=actor, event=event,
                             data=data)
