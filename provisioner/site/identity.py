"""Who is calling: the station from its verified TLS client certificate, the operator's token."""

from __future__ import annotations

import re
import ssl

from fastapi import Request
from sqlalchemy import select

from provisioner.errors import AuthenticationFailed, StationInactive
from provisioner.site.context import SiteContext
from provisioner.site.db.models import Station
from provisioner.site.keys import fingerprint_der
from provisioner.site.tls import peer_cert_pem

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")  # secrets.token_urlsafe output


def site_context(request: Request) -> SiteContext:
    """Return the site context the app was created with."""
    ctx = request.app.state.site
    assert isinstance(ctx, SiteContext)
    return ctx


def station_id(request: Request) -> str:
    """Return the id of the active station whose verified certificate opened this connection.

    Raises:
        StationInactive: no client certificate, or none matching an active station (403); a
            station whose enrolment is still pending is told to confirm it first.
    """
    station, status = _station_of_certificate(request)
    if status == "pending":
        raise StationInactive(
            f"station {station} has not confirmed its one-time enrolment "
            "(run `provisioner station enroll` with its bundle)"
        )
    if status != "active":
        raise StationInactive(f"station {station} is {status}")
    return station


def enrolling_station_id(request: Request) -> str:
    """Return the id of the station presenting its certificate, whatever its status.

    Raises:
        StationInactive: no client certificate, or none of an enrolled station (403).
    """
    return _station_of_certificate(request)[0]


def _station_of_certificate(request: Request) -> tuple[str, str]:
    pem = peer_cert_pem(request.scope)
    if pem is None:
        raise StationInactive("station endpoints need a verified TLS client certificate")
    der = ssl.PEM_cert_to_DER_cert(pem)
    ctx = site_context(request)
    with ctx.factory() as session:
        station = session.scalars(
            select(Station).where(Station.cert_fingerprint == fingerprint_der(der))
        ).first()
        if station is None:
            raise StationInactive("the client certificate belongs to no enrolled station")
        return station.station_id, station.status


def bearer_token(request: Request) -> str:
    """Return the operator session token from ``Authorization: Bearer``.

    Raises:
        AuthenticationFailed: the header is missing or malformed (401).
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or _TOKEN_RE.fullmatch(token) is None:
        raise AuthenticationFailed("missing operator session (Authorization: Bearer <token>)")
    return token
