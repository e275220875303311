"""Field-update endpoints on the update listener (server TLS, no client certificate)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from provisioner.site.updates.service import UpdateService
from provisioner.wire import (
    DELIVERY_ID_HEADER,
    PACKAGE_CONTENT_TYPE,
    VERSION_HEADER,
    ResultAck,
    ResultBody,
    UpdateRequestBody,
    UpdateResponse,
)

router = APIRouter()


def update_service(request: Request) -> UpdateService:
    """The app's update service."""
    service = request.app.state.updates
    assert isinstance(service, UpdateService)
    return service


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


_SERVICE = Depends(update_service)


@router.post("/updates", response_model=UpdateResponse)
def post_update(body: UpdateRequestBody, request: Request,
                service: UpdateService = _SERVICE) -> Response:
    """Deliver the device's next release, encrypted for it, or refuse (problem+json).

    A client that accepts ``application/octet-stream`` gets the package as the raw body
    (spec §6); any other gets the JSON ``UpdateResponse`` with the package in base64.
    """
    delivery = service.request(body, _source(request))
    if PACKAGE_CONTENT_TYPE in request.headers.get("accept", ""):
        return Response(delivery.package, media_type=PACKAGE_CONTENT_TYPE,
                        headers={DELIVERY_ID_HEADER: str(delivery.delivery_id),
                                 VERSION_HEADER: str(delivery.version)})
    return Response(delivery.to_json(), media_type="application/json")


@router.post("/updates/{delivery_id}/result", response_model=ResultAck)
def post_result(delivery_id: int, body: ResultBody, request: Request,
                service: UpdateService = _SERVICE) -> ResultAck:
    """Record the device's install outcome for one delivery."""
    return service.result(delivery_id, body, _source(request))
