"""TLS at the server edge: hardened context and the ASGI TLS extension uvicorn lacks.

uvicorn 0.54 does not put ``scope["extensions"]["tls"]`` in HTTP scopes, so the h11 protocol
class below (h11 always ships with uvicorn) reads the verified peer certificate from the
connection's SSL object and adds the extension (ASGI spec, "TLS Extension") to every request
on that connection.

One listener serves everything with ``CERT_OPTIONAL``: a certificate that is presented must
chain to the site CA (else the handshake fails), and /v1/health needs none. Every other path
goes through ``provisioner.site.gate.StationGate``, which refuses a request whose scope carries
no verified certificate, or one whose fingerprint is not an active station's (403), before
the body is read.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

ASGIApp = Callable[[Any, Any, Any], Any]


def harden(config: Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn ``ssl_context_factory``: the default context raised to TLS 1.2 minimum."""
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, object] | None:
    """Build the ASGI TLS extension for a connection, or None for plain TCP."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
        "cipher_name": cipher[0] if cipher else None,
    }


class _WithTls:
    """ASGI middleware adding one connection's TLS extension to every scope."""

    def __init__(self, app: ASGIApp, extension: dict[str, object]) -> None:
        self._app = app
        self._extension = extension

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        extensions = dict(scope.get("extensions") or {})
        extensions["tls"] = self._extension
        await self._app({**scope, "extensions": extensions}, receive, send)


class TlsH11Protocol(H11Protocol):
    """h11 protocol that exposes the peer certificate through the ASGI TLS extension."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Attach the connection's TLS extension before any request is read."""
        super().connection_made(transport)
        extension = tls_extension(transport)
        if extension is not None:
            self.app = _WithTls(self.app, extension)

    def shutdown(self) -> None:
        """Close as h11 does; drop an idle keep-alive connection at once.

        A TLS close waits for the peer's close_notify, which an idle client never sends, so
        server shutdown would otherwise wait out the SSL shutdown timeout.
        """
        idle = self.cycle is None or self.cycle.response_complete
        super().shutdown()
        if idle:
            self.transport.abort()


def peer_cert_pem(scope: Any) -> str | None:
    """Return the verified client certificate (PEM) from a request scope, if any."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    return str(chain[0]) if chain else None
