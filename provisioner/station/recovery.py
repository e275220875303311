"""After a crash: map each open attempt's last journaled state to the one action that settles it.

| last state (not closed)  | action        | why                                            |
|--------------------------|---------------|------------------------------------------------|
| detected                 | close_locally | nothing was asked of the site                  |
| uid_read                 | settle_grant  | the request may have reached the site: replay  |
|                          |               | it (same request_id), report the grant failed  |
| granted, key_derived     | report_failed | chip untouched; the index stays burned         |
| flashing                 | reverify      | same chip attached → compare its digest, else  |
|                          |               | report ``unknown``                             |
| verified, locked         | finish        | protect if due and attached; report the digest |
| any end state, granted   | resend_report | same request_id: the site may lack the outcome |
| any end state, no grant  | close_locally | the site holds nothing for it                  |
"""

from __future__ import annotations

from enum import StrEnum

from provisioner.station.engine import Attempt, AttemptState


class RecoveryAction(StrEnum):
    """What the runner does for one open attempt on restart."""

    close_locally = "close_locally"
    settle_grant = "settle_grant"
    report_failed = "report_failed"
    reverify = "reverify"
    finish = "finish"
    resend_report = "resend_report"


_BY_STATE: dict[AttemptState, RecoveryAction] = {
    AttemptState.detected: RecoveryAction.close_locally,
    AttemptState.uid_read: RecoveryAction.settle_grant,
    AttemptState.granted: RecoveryAction.report_failed,
    AttemptState.key_derived: RecoveryAction.report_failed,
    AttemptState.flashing: RecoveryAction.reverify,
    AttemptState.verified: RecoveryAction.finish,
    AttemptState.locked: RecoveryAction.finish,
}


def plan_recovery(attempt: Attempt) -> RecoveryAction | None:
    """Return the action that settles ``attempt``, or None when it is already closed."""
    if attempt.closed:
        return None
    if attempt.is_terminal:
        return RecoveryAction.resend_report if attempt.grant_id else RecoveryAction.close_locally
    return _BY_STATE[attempt.state]
