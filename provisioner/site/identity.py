"""Who is calling: the station from its verified TLS client certificate, the operator's token.

The dependencies are ``async`` although they never await: FastAPI runs a plain ``def``
dependency in the request thread pool, one thread hop per dependency and request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fastapi import Request

from provisioner.errors import AuthenticationFailed, StationInactive
from provisioner.site.context import SiteContext
from provisioner.site.gate import GatedStation
from provisioner.site.policy import require_active_station

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")  # secrets.token_urlsafe output


async def site_context(request: Request) -> SiteContext:
    """Return the site context the app was created with."""
    ctx = request.app.state.site
    assert isinstance(ctx, SiteContext)
    return ctx


async def station_id(request: Request) -> str:
    """Return the id of the active station that ``StationGate`` verified for this request.

    Raises:
        StationInactive: no verified certificate (403); a station whose enrolment is still
            pending is told to confirm it first; a suspended one is refused.
    """
    station = _gated(request)
    if station.status is None:  # only grant requests leave the status to their transaction
        raise StationInactive(f"station {station.station_id}'s status was not read")
    require_active_station(station.station_id, station.status)
    return station.station_id


async def enrolling_station_id(request: Request) -> str:
    """Return the id of the station ``StationGate`` verified, whatever its status.

    Raises:
        StationInactive: the request did not pass the gate (403).
    """
    return _gated(request).station_id


@dataclass(frozen=True, slots=True)
class GrantCaller:
    """Who asks for a grant or a completion: the site, the station, the operator's token."""

    ctx: SiteContext
    station: GatedStation  # status undecided: the transaction decides on it
    token: str = field(repr=False)


async def grant_caller(request: Request) -> GrantCaller:
    """Return the site context, the station ``StationGate`` verified for a grant or completion
    and the operator's token: one dependency (FastAPI spends about 8 µs on each).

    The transaction decides on the station's status and certificate (``grants.issue_grant``,
    ``grants.complete_grant``); the gate may not have read them.

    Raises:
        StationInactive: the request did not pass the gate (403); checked first.
        AuthenticationFailed: no well-formed operator token (401).
    """
    return GrantCaller(await site_context(request), _gated(request),
                       await bearer_token(request))


def _gated(request: Request) -> GatedStation:
    found = getattr(request.state, "station", None)
    if not isinstance(found, GatedStation):
        raise StationInactive("station endpoints need a verified TLS client certificate")
    return found


async def bearer_token(request: Request) -> str:
    """Return the operator session token from ``Authorization: Bearer``.

    Raises:
        AuthenticationFailed: the header is missing or malformed (401).
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or _TOKEN_RE.fullmatch(token) is None:
        raise AuthenticationFailed("missing operator session (Authorization: Bearer <token>)")
    return token
