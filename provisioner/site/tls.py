"""TLS at the server edge: hardened context and the ASGI TLS extension uvicorn lacks.

uvicorn 0.54 does not put ``scope["extensions"]["tls"]`` in HTTP scopes, so the httptools
protocol class below reads the verified peer certificate from the connection's SSL object once
and puts the extension (ASGI spec, "TLS Extension") in the scope of every request on that
connection. httptools, not h11: its C parser costs a fraction of h11's per request.

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
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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


class TlsHttpToolsProtocol(HttpToolsProtocol):
    """httptools protocol that exposes the peer certificate through the ASGI TLS extension."""

    _tls: dict[object, object] | None = None  # uvicorn's HTTPScope types extensions so

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Read the connection's TLS extension before any request is parsed."""
        super().connection_made(transport)
        self._tls = cast("dict[object, object] | None", tls_extension(transport))

    def on_message_begin(self) -> None:
        """Start a request's scope as httptools does, with the connection's TLS extension."""
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}

    def shutdown(self) -> None:
        """Close as uvicorn does; drop an idle keep-alive connection at once.

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
