"""ASGI middleware bounding the grant requests one server process works on at once.

Grants and completions beyond ``max_in_flight`` (those running plus those waiting for a
request thread) are answered ``503 site_unavailable`` at once, before their body is read,
instead of queueing for seconds behind the others; the station retries with the same
``request_id`` (idempotent on the site), so a refused request costs nothing but the retry.
"""

from __future__ import annotations

from typing import Any

from provisioner.errors import SiteBusy
from provisioner.site.problems import send_refusal
from provisioner.site.tls import ASGIApp
from provisioner.wire import API_PREFIX

RETRY_AFTER_S = 1


def is_grant_path(method: str, path: str) -> bool:
    """Tell whether a request issues or completes a grant (the order-locking calls)."""
    if method != "POST":
        return False
    return ((path.startswith(f"{API_PREFIX}/orders/") and path.endswith("/grants"))
            or (path.startswith(f"{API_PREFIX}/grants/") and path.endswith("/complete")))


class GrantAdmission:
    """Admit at most ``max_in_flight`` grant requests at once; refuse the others as busy.

    The count lives in the process's event loop (one thread), so it needs no lock.
    """

    def __init__(self, app: ASGIApp, *, max_in_flight: int) -> None:
        self._app = app
        self._max_in_flight = max_in_flight
        self._in_flight = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not is_grant_path(scope["method"], scope["path"]):
            await self._app(scope, receive, send)
            return
        if self._in_flight >= self._max_in_flight:
            busy = SiteBusy(f"site busy: {self._in_flight} grant requests in progress; retry "
                            "with the same request_id")
            await send_refusal(scope, send, busy, {"Retry-After": str(RETRY_AFTER_S)},
                               close=False)
            return
        self._in_flight += 1
        try:
            await self._app(scope, receive, send)
        finally:
            self._in_flight -= 1
