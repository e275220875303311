"""The site ↔ station API: request and response bodies, problem documents, wire codes.

Both sides import these models, so a field renamed here is renamed everywhere. Binary fields
travel as standard base64 strings. The operator session token travels in the
``Authorization: Bearer <token>`` header; the station's identity is never in a body: it is the
verified TLS client certificate.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from provisioner.errors import IndexReused, Refused, refusal_classes

API_PREFIX = "/v1"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceStatus(StrEnum):
    """Life of a device row at the site."""

    reserved = "reserved"
    programmed = "programmed"
    failed = "failed"
    suspect = "suspect"
    quarantined = "quarantined"


class OrderStatus(StrEnum):
    """Whether an order still accepts grants."""

    open = "open"
    closed = "closed"


class AttemptResult(StrEnum):
    """What the station reports for one grant."""

    success = "success"
    failure = "failure"
    unknown = "unknown"


class SessionRequest(_Body):
    """Operator sign-in."""

    operator_id: str = Field(min_length=1, max_length=64)
    pin: str = Field(min_length=4, max_length=64, repr=False)


class SessionResponse(_Body):
    """A signed-in operator's bearer token."""

    operator_id: str
    session_token: str = Field(repr=False)
    expires_at: datetime


class OrderSummary(_Body):
    """One open order as a station sees it."""

    order_id: str
    product: str
    profile: str
    profile_sha256: str
    authorised_quantity: int
    produced: int
    reserved: int
    remaining: int
    status: OrderStatus


class OrderList(_Body):
    """Open orders this station may serve."""

    orders: list[OrderSummary]


class GrantRequest(_Body):
    """Ask for a device ID for one chip (design §3 step 3)."""

    request_id: str = Field(min_length=8, max_length=64)
    chip_uid: str = Field(pattern=r"^[0-9a-f]{8,64}$")
    drbg_index: int = Field(ge=0)


class GrantResponse(_Body):
    """A grant: the device ID, the index whose key the station derives, the sealed template.

    ``template`` and ``application`` are envelopes (``provisioner.crypto.envelope``) under the
    station's transport key, with AAD from :func:`template_aad`.
    """

    grant_id: str
    order_id: str
    device_id: int
    drbg_index: int
    key_size_bytes: int
    profile: str
    profile_sha256: str
    template: str
    application: str | None = None
    expires_at: datetime


class CompleteRequest(_Body):
    """The outcome of one grant."""

    request_id: str = Field(min_length=8, max_length=64)
    result: AttemptResult
    image_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    verified: bool = False
    protected: bool = False
    timings_ms: dict[str, float] = Field(default_factory=dict)
    error_code: str | None = None
    error: str | None = Field(default=None, max_length=2000)


class CompleteResponse(_Body):
    """Where the device stands after completion."""

    grant_id: str
    device_id: int
    status: DeviceStatus
    attempts: int


class EnrolmentConfirmation(_Body):
    """The station's one call proving it opened its bundle (over mTLS with the bundle's cert)."""

    request_id: str = Field(min_length=8, max_length=64)


class EnrolmentConfirmed(_Body):
    """The site's answer: the station is now active."""

    station_id: str
    status: str
    enrolled_at: datetime


class Health(_Body):
    """Liveness answer."""

    status: str
    version: str
    time: datetime


class Problem(BaseModel):
    """RFC 9457 problem details with our stable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    expected_index: int | None = None


def template_aad(kind: str, grant_id: str, device_id: int) -> bytes:
    """Return the AAD binding a sealed template or application to its grant and device."""
    return f"provisioner/{kind}/v1|{grant_id}|{device_id}".encode()


def problem_from_refusal(exc: Refused, request_id: str | None) -> Problem:
    """Render a refusal as a problem document."""
    expected = getattr(exc, "expected", None)
    return Problem(
        type=f"urn:provisioner:problem:{exc.code}",
        title=exc.code.replace("_", " "),
        status=exc.http_status,
        detail=exc.detail,
        code=exc.code,
        request_id=request_id,
        expected_index=expected if isinstance(expected, int) else None,
    )


def refusal_from_problem(problem: Problem) -> Refused:
    """Map a problem document back to its typed refusal; an unknown code keeps its name in text."""
    if problem.code == IndexReused.code:
        return IndexReused(problem.detail, expected=problem.expected_index or 0)
    cls = refusal_classes().get(problem.code)
    if cls is None:
        return Refused(f"{problem.code}: {problem.detail}")
    return cls(problem.detail)
