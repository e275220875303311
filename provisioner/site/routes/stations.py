"""Station endpoints: enrolment, sign-in, orders, grants, completion (client cert required)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel

from provisioner.site.catalogue import list_orders
from provisioner.site.confirmation import confirm_enrolment
from provisioner.site.context import SiteContext
from provisioner.site.grants import complete_grant, issue_grant
from provisioner.site.identity import (
    GrantCaller,
    bearer_token,
    enrolling_station_id,
    grant_caller,
    site_context,
    station_id,
)
from provisioner.site.lane import GrantLane
from provisioner.site.sessions import operator_for_token, sign_in
from provisioner.site.station_alarms import record_alarm
from provisioner.wire import (
    ID_PATTERN,
    AlarmRecorded,
    CompleteRequest,
    CompleteResponse,
    EnrolmentConfirmation,
    EnrolmentConfirmed,
    GrantRequest,
    GrantResponse,
    OrderList,
    SessionRequest,
    SessionResponse,
    StationAlarm,
)

router = APIRouter()

_CTX = Depends(site_context)
_STATION = Depends(station_id)
_TOKEN = Depends(bearer_token)
PathId = Annotated[str, Path(pattern=ID_PATTERN)]
_ENROLLING = Depends(enrolling_station_id)
_CALLER = Depends(grant_caller)


def _json(body: BaseModel) -> Response:
    """Answer ``body`` as FastAPI would from ``response_model``, without validating it again.

    The routes' answers are the wire models themselves; FastAPI would validate each one again
    (in the request thread pool: one more thread hop per request) before dumping it.
    ``response_model`` stays on the routes for the OpenAPI document.
    """
    return Response(body.model_dump_json(by_alias=True), media_type="application/json")


@router.post("/enrolment", response_model=EnrolmentConfirmed)
def post_enrolment(
    body: EnrolmentConfirmation, request: Request, ctx: SiteContext = _CTX,
    station: str = _ENROLLING,
) -> Response:
    """Consume the station's one-time enrolment (a second use is refused with an alarm)."""
    request.state.request_id = body.request_id
    return _json(confirm_enrolment(ctx, station, body))


@router.post("/session", response_model=SessionResponse)
def post_session(
    body: SessionRequest, ctx: SiteContext = _CTX, station: str = _STATION
) -> Response:
    """Sign an operator in at this station (exponential lockout after repeated failures)."""
    return _json(sign_in(ctx, station, body))


@router.get("/orders", response_model=OrderList)
def get_orders(ctx: SiteContext = _CTX, station: str = _STATION, token: str = _TOKEN) -> Response:
    """List the open orders this station may serve, with counts."""
    with ctx.factory() as session:
        operator_for_token(session, token, station, ctx.clock())
    return _json(OrderList(orders=list_orders(ctx, station_id=station, only_open=True)))


def _lane(request: Request) -> GrantLane:
    lane = request.app.state.grant_lane
    assert isinstance(lane, GrantLane)
    return lane


@router.post("/orders/{order_id}/grants", response_model=GrantResponse)
async def post_grant(
    order_id: PathId, body: GrantRequest, request: Request, caller: GrantCaller = _CALLER,
) -> Response:
    """Grant a device ID and key index for one chip (design §3 step 3), in the process's
    ``GrantLane``; the station's status and certificate are decided in the transaction."""
    request.state.request_id = body.request_id
    station = caller.station
    return await _lane(request).run(lambda: _json(issue_grant(
        caller.ctx, station.station_id, caller.token, order_id, body,
        fingerprint=station.fingerprint)))


@router.post("/grants/{grant_id}/complete", response_model=CompleteResponse)
async def post_complete(
    grant_id: PathId, body: CompleteRequest, request: Request, caller: GrantCaller = _CALLER,
) -> Response:
    """Record the outcome of one grant (design §3 step 5), in the process's ``GrantLane``;
    the station's status and certificate are decided in the transaction."""
    request.state.request_id = body.request_id
    station = caller.station
    return await _lane(request).run(lambda: _json(complete_grant(
        caller.ctx, station.station_id, caller.token, grant_id, body,
        fingerprint=station.fingerprint)))


@router.post("/alarms", response_model=AlarmRecorded)
def post_alarm(body: StationAlarm, ctx: SiteContext = _CTX, station: str = _STATION
               ) -> Response:
    """Audit an alarm the station raises about itself (its journal failed its checks)."""
    return _json(record_alarm(ctx, station, body))
