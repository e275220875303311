"""ASGI middleware capping a request body while it is read, before the app can buffer it.

A declared ``Content-Length`` over the limit is answered ``413 body_too_large`` before a byte of
the body is read. A chunked or understated body is counted chunk by chunk as the app reads it;
the chunk that crosses the limit is never handed on (the app sees an end of body), and the
app's answer is replaced by the 413. Reusable by every listener (station API, field updates).
"""

from __future__ import annotations

from typing import Any

from provisioner.errors import BodyTooLarge
from provisioner.site.problems import send_refusal
from provisioner.site.tls import ASGIApp


class BodyLimit:
    """Refuse request bodies longer than ``max_body_bytes`` (HTTP only; other scopes pass).

    ``close``: drop the connection with the 413 (for clients nobody authenticated); False
    behind ``StationGate``, where the server discards the rest of a known station's body in
    constant memory so that the station surely reads its 413.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, close: bool = True) -> None:
        self._app = app
        self._max_body_bytes = max_body_bytes
        self._close = close

    def _refusal(self) -> BodyTooLarge:
        return BodyTooLarge(f"request body is larger than {self._max_body_bytes} bytes")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self._max_body_bytes:
            await send_refusal(scope, send, self._refusal(), close=self._close)
            return
        received = 0
        too_large = False
        started = False

        async def limited_receive() -> Any:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_body_bytes:
                    too_large = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if too_large:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await send_refusal(scope, send, self._refusal(), close=self._close)
                return  # the app's own answer to a cut body is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self._app(scope, limited_receive, guarded_send)


def _content_length(scope: Any) -> int | None:
    """Return the declared body length; a malformed header counts as too large."""
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            text = bytes(value).decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) <= 18 else 2**63
    return None
