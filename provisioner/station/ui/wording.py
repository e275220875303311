"""What the station UI says to the operator about errors and conditions, in their words."""

from __future__ import annotations

import re

from provisioner.errors import (
    AuthenticationFailed,
    OperatorLocked,
    OrderClosed,
    ProvisionerError,
    QuotaExhausted,
    Refused,
    SiteUnreachable,
)
from provisioner.station.ui.widgets.banner import Alert

SITE_UNREACHABLE_CODE = "site_unreachable"  # the runner's code for a SiteUnreachable failure
_MINUTES = re.compile(r"(\d+)\s*minutes?")


def sign_in_error(exc: ProvisionerError) -> str:
    """Explain a failed sign-in."""
    if isinstance(exc, OperatorLocked):
        found = _MINUTES.search(exc.detail)
        wait = f"for {found.group(1)} minutes" if found else "for now"
        return (f"Locked {wait} after too many wrong PINs. "
                "Wait, or ask a supervisor to reset your PIN.")
    if isinstance(exc, AuthenticationFailed):
        return "Wrong operator ID or PIN. Try again."
    if isinstance(exc, SiteUnreachable):
        return "Site unreachable: your PIN cannot be checked. Check the network, then retry."
    if isinstance(exc, Refused):
        return f"The site refused: {exc.detail}"
    return f"Sign-in failed: {exc}"


def site_trouble(exc: ProvisionerError) -> str:
    """Explain why the orders could not be loaded."""
    if isinstance(exc, SiteUnreachable):
        return "Site unreachable: orders and counts cannot be loaded. Check the network."
    if isinstance(exc, AuthenticationFailed):
        return "Your session ended: quit and sign in again."
    return f"The site refused: {exc}"


def site_unreachable_alert(pending: int = 0) -> Alert:
    """The banner while the site does not answer; ``pending`` boards await their report."""
    if pending:
        boards, them = ("board is", "it") if pending == 1 else ("boards are", "them")
        return Alert("error", f"SITE UNREACHABLE: {pending} {boards} programmed, report "
                              f"pending. Keep {them}: the station reports {them} when the "
                              "site answers (r: try now).")
    return Alert("error", "SITE UNREACHABLE: boards cannot get grants. Check the network; "
                          "press Enter or r to try again.")


def tally_line(passed: int, failed: int, pending: int) -> str:
    """The bench's running count of this session's boards."""
    line = f"This session: {passed} PASS · {failed} FAIL"
    return line + (f" · {pending} report pending" if pending else "")


def exhausted_alert(order_id: str, code: str) -> Alert:
    """The banner once the order has no units left (or was closed)."""
    what = "closed by the site" if code == OrderClosed.code else "exhausted: no units left"
    return Alert("warning", f"ORDER {order_id} {what}. Press o to pick another order.")


def finishing_alert(running: int) -> Alert:
    """The banner while quitting waits for boards in flight."""
    boards = "board" if running == 1 else "boards"
    return Alert("info", f"Finishing {running} {boards}… the station quits when they are done.")


ORDER_ENDED_CODES = frozenset({QuotaExhausted.code, OrderClosed.code})
