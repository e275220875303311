"""ASGI middleware: no work for a station endpoint before its client certificate is verified.

Runs in front of the app, before any byte of the body is read: a request to anything but the
public paths must come over a connection whose verified client certificate belongs to an
enrolled station (of any status), else it is answered ``403 station_inactive`` at once (the body is
never read, so an anonymous upload costs the site nothing). The station is handed to the app
as a :class:`GatedStation` in ``scope["state"]["station"]`` (``request.state.station``); the
route's dependency (``identity.station_id`` or ``enrolling_station_id``) decides on the status.

A grant or completion request (``POST …/orders/{id}/grants``, ``POST …/grants/{id}/complete``)
from a certificate the process has already mapped to its station is passed on without
reading the station: its transaction reads the station anyway (a grant under the station's
row lock) and decides there on the certificate and the status (``grants``), so a suspended
or revoked station is still refused from its next request on, one round trip and one
request-thread hop cheaper. A certificate maps to one station for good (a station's
fingerprint is set when it is enrolled), and only certificates of enrolled stations are
remembered.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from typing import Any

import anyio.to_thread
from sqlalchemy import bindparam, select

from provisioner.errors import StationInactive
from provisioner.site.admission import is_grant_path
from provisioner.site.context import SiteContext
from provisioner.site.db import direct
from provisioner.site.db.engine import reading
from provisioner.site.db.models import Station
from provisioner.site.keys import fingerprint_der
from provisioner.site.problems import send_refusal
from provisioner.site.tls import ASGIApp, peer_cert_pem
from provisioner.wire import API_PREFIX

PUBLIC_PATHS = frozenset({f"{API_PREFIX}/health"})
_STATION_OF_CERT = select(Station.station_id, Station.status).where(
    Station.cert_fingerprint == bindparam("fingerprint"))


@dataclass(frozen=True, slots=True)
class GatedStation:
    """The station whose verified certificate a request came with."""

    station_id: str
    fingerprint: str  # SHA-256 of the certificate (DER), hex
    status: str | None  # None: not read for this request (a grant's transaction reads it)


def station_for_certificate(ctx: SiteContext, pem: str | None) -> GatedStation:
    """Return the station holding the verified certificate ``pem``, with its status.

    Raises:
        StationInactive: no certificate, or none of an enrolled station.
    """
    if pem is None:
        raise StationInactive("station endpoints need a verified TLS client certificate")
    fingerprint = fingerprint_der(ssl.PEM_cert_to_DER_cert(pem))
    # Read on every request (one indexed Core select): a revoked or suspended station is
    # refused from its next request on. A read-only connection: on SQLite it neither waits
    # for nor blocks the write lock of the grants in progress; on PostgreSQL one round trip.
    with reading(ctx.engine) as conn:
        found = direct.one_or_none(conn, _STATION_OF_CERT, {"fingerprint": fingerprint})
    if found is None:
        raise StationInactive("the client certificate belongs to no enrolled station")
    station_id, status = found
    return GatedStation(str(station_id), fingerprint, str(status))


class StationGate:
    """Let only public paths and active stations' requests reach ``app``."""

    def __init__(self, app: ASGIApp, *, ctx: SiteContext) -> None:
        self._app = app
        self._ctx = ctx
        # A SQLite lookup is one indexed read of a local WAL database that never waits for a
        # writer (``reading``): ~0.1 ms on the event loop, less than the ~0.15 ms of CPU a
        # request-thread hop costs (measured on the 2-CPU bench machine), and it never queues
        # for a request thread behind the grants. A PostgreSQL one is a network round trip:
        # it keeps its thread.
        self._reads_inline = ctx.engine.dialect.name == "sqlite"
        # Certificate (PEM, as the connection's TLS extension holds it) -> its station.
        self._stations: dict[str, GatedStation] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in PUBLIC_PATHS:
            await self._app(scope, receive, send)
            return
        pem = peer_cert_pem(scope)
        try:
            if pem is None:  # refused without a thread or a query
                raise StationInactive("station endpoints need a verified TLS client certificate")
            known = self._stations.get(pem)
            if known is not None and is_grant_path(scope.get("method", ""), scope["path"]):
                station = replace(known, status=None)  # the transaction reads it
            else:
                station = await self._read(pem)
                self._stations[pem] = station
        except StationInactive as refusal:
            await send_refusal(scope, send, refusal)
            return
        state = dict(scope.get("state") or {})
        state["station"] = station
        await self._app({**scope, "state": state}, receive, send)

    async def _read(self, pem: str) -> GatedStation:
        if self._reads_inline:
            return station_for_certificate(self._ctx, pem)
        return await anyio.to_thread.run_sync(station_for_certificate, self._ctx, pem)
