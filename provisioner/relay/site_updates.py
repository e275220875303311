"""HTTPS client of the site's update listener (server TLS verified against the site CA)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
from pydantic import ValidationError

from provisioner.errors import SiteProtocolError, SiteUnreachable
from provisioner.update.codec import Outcome, Reason, ResultReport, UpdateRequest
from provisioner.wire import (
    API_PREFIX,
    DELIVERY_ID_HEADER,
    PACKAGE_CONTENT_TYPE,
    Problem,
    ResultAck,
    ResultBody,
    UpdateRequestBody,
    refusal_from_problem,
)

TIMEOUT_S = 30.0


class UpdateSite:
    """The update listener at ``url`` (no client certificate)."""

    def __init__(self, url: str, ca_path: Path) -> None:
        context = ssl.create_default_context(cafile=str(ca_path))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._url = url.rstrip("/")
        self._client = httpx.Client(verify=context, timeout=TIMEOUT_S)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _send(self, path: str, body: str, accept: str = "application/json") -> httpx.Response:
        """POST ``body``; return the answer, or raise the refusal its problem document names."""
        url = f"{self._url}{API_PREFIX}{path}"
        try:
            response = self._client.post(url, content=body, headers={
                "content-type": "application/json", "accept": accept})
        except httpx.HTTPError as exc:
            raise SiteUnreachable(url, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            try:
                raise refusal_from_problem(Problem.model_validate(response.json()))
            except (ValueError, ValidationError) as exc:
                raise SiteProtocolError(response.status_code, "unreadable problem") from exc
        return response

    def _post(self, path: str, body: str) -> dict[str, object]:
        response = self._send(path, body)
        try:
            payload = response.json()
        except ValueError as exc:
            raise SiteProtocolError(response.status_code, "answer is not JSON") from exc
        if not isinstance(payload, dict):
            raise SiteProtocolError(response.status_code, "answer is not an object")
        return payload

    def request_update(self, request: bytes, mac: bytes) -> tuple[int, bytes]:
        """Forward a device's request; return (delivery_id, package) or raise its refusal.

        The package comes as the raw answer body (spec §6), its delivery id in a header.
        """
        fields = UpdateRequest.parse(request)
        body = UpdateRequestBody(device_id=fields.device_id,
                                 current_version=fields.current_version,
                                 security_counter=fields.security_counter,
                                 nonce=fields.nonce.hex(), mac=mac.hex())
        response = self._send("/updates", body.model_dump_json(), accept=PACKAGE_CONTENT_TYPE)
        if response.headers.get("content-type") != PACKAGE_CONTENT_TYPE:
            raise SiteProtocolError(200, "the delivery is not a package")
        try:
            return int(response.headers[DELIVERY_ID_HEADER]), response.content
        except (KeyError, ValueError) as exc:
            raise SiteProtocolError(200, f"unreadable delivery id: {exc}") from exc

    def report_result(self, report: bytes, mac: bytes) -> ResultReport:
        """Forward a device's result report; return it parsed once the site stored it."""
        parsed = ResultReport.parse(report)
        body = ResultBody(device_id=parsed.device_id, outcome=parsed.outcome.value,
                          reason=parsed.reason.name, running_version=parsed.running_version,
                          security_counter=parsed.security_counter, mac=mac.hex())
        ResultAck.model_validate(self._post(f"/updates/{parsed.delivery_id}/result",
                                            body.model_dump_json()))
        return parsed


__all__ = ["Outcome", "Reason", "UpdateSite"]
