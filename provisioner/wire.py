"""The site ↔ station API: request and response bodies, problem documents, wire codes.

Both sides import these models, so a field renamed here is renamed everywhere. Binary fields
travel as standard base64 strings. The operator session token travels in the
``Authorization: Bearer <token>`` header; the station's identity is never in a body: it is the
verified TLS client certificate.

Bounds (every field a station or device sends is typed strictly: JSON ``true`` is no integer):

* **Ids** — ``station_id``, ``operator_id``, ``order_id``, ``grant_id``: one character set,
  :data:`ID_PATTERN` (1-64 of ``A-Z a-z 0-9 . _ -``, starting with a letter or digit), checked
  by :func:`check_id` in the admin CLI and by the same pattern in the API models and paths.
  ``request_id`` uses the same characters, 8-64 long.
* ``drbg_index`` 0 … 2^63-1 (and at most the site's index window past the station's next index);
  ``chip_uid`` 8-64 lowercase hex digits; ``image_sha256`` 64 lowercase hex digits.
* Completion: ``timings_ms`` at most 16 entries named like ``erase``, each 0 … 10^9 ms;
  ``error_code`` a snake_case word of at most 64 characters; ``error`` at most 2000 characters
  with no control characters besides tab and newline.
* PINs 1-64 characters without control characters at sign-in (the creation policy is
  ``provisioner.crypto.secret_policy``).

Anything outside a bound is a ``422 invalid_request`` problem document (never a 5xx and never a
retry hint); a body past the endpoint's limit is ``413 body_too_large``.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from provisioner.errors import IndexReused, InvalidRequest, Refused, refusal_classes

API_PREFIX = "/v1"
PROBLEM_CONTENT_TYPE = "application/problem+json"

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{7,63}$"
CHIP_UID_PATTERN = r"^[0-9a-f]{8,64}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
TEXT_PATTERN = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"  # printable text: no control chars but \t \n
MAX_DRBG_INDEX = 2**63 - 1  # a BIGINT column
MAX_TIMINGS = 16
MAX_TIMING_MS = 1e9
MAX_ERROR_CHARS = 2000
_ID_RE = re.compile(ID_PATTERN.strip("^$"))
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

Identifier = Annotated[str, Field(pattern=ID_PATTERN, strict=True)]
RequestId = Annotated[str, Field(pattern=REQUEST_ID_PATTERN, strict=True)]
TimingName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
TimingMs = Annotated[float, Field(ge=0, le=MAX_TIMING_MS, allow_inf_nan=False, strict=True)]


def check_id(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid id (:data:`ID_PATTERN`), for the admin CLI and API.

    Raises:
        InvalidRequest: ``value`` has a character outside the set, or is empty or too long.
    """
    if not isinstance(value, str) or _ID_RE.fullmatch(value) is None:
        shown = ascii(value)[:80]
        raise InvalidRequest(
            f"{kind} {shown} is not an id: 1-64 characters of A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )
    return value


def printable(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters with control characters made visible."""
    cleaned = _CONTROL_RE.sub(lambda found: ascii(found.group())[1:-1], text)
    return cleaned[:limit]


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

    operator_id: Identifier
    pin: str = Field(min_length=1, max_length=64, pattern=TEXT_PATTERN, strict=True, repr=False)


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

    request_id: RequestId
    chip_uid: str = Field(pattern=CHIP_UID_PATTERN, strict=True)
    drbg_index: int = Field(ge=0, le=MAX_DRBG_INDEX, strict=True)


# What a grant's envelopes hold: Intel HEX text, deflated (``provisioner.crypto.grant_firmware``).
FIRMWARE_ENCODING: Final = "ihex+zlib"  # mypy holds it equal to the field's Literal


class GrantResponse(_Body):
    """A grant: the device ID, the index whose key the station derives, the sealed template.

    ``template`` and ``application`` are base64 envelopes (``provisioner.crypto.envelope``)
    under the station's transport key, with AAD from :func:`template_aad`, of the firmware's
    text encoded as ``firmware_encoding`` says (required: a station and a site that disagree
    on it fail on the answer's shape, not on an envelope that seems tampered with).
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
    firmware_encoding: Literal["ihex+zlib"]
    expires_at: datetime


class CompleteRequest(_Body):
    """The outcome of one grant."""

    request_id: RequestId
    result: AttemptResult
    image_sha256: str | None = Field(default=None, pattern=SHA256_PATTERN, strict=True)
    verified: bool = Field(default=False, strict=True)
    protected: bool = Field(default=False, strict=True)
    timings_ms: dict[TimingName, TimingMs] = Field(default_factory=dict, max_length=MAX_TIMINGS)
    error_code: str | None = Field(default=None, pattern=CODE_PATTERN, strict=True)
    error: str | None = Field(
        default=None, max_length=MAX_ERROR_CHARS, pattern=TEXT_PATTERN, strict=True
    )


class CompleteResponse(_Body):
    """Where the device stands after completion."""

    grant_id: str
    device_id: int
    status: DeviceStatus
    attempts: int


class EnrolmentConfirmation(_Body):
    """The station's one call proving it opened its bundle (over mTLS with the bundle's cert)."""

    request_id: RequestId


class EnrolmentConfirmed(_Body):
    """The site's answer: the station is now active."""

    station_id: str
    status: str
    enrolled_at: datetime


class AlarmCode(StrEnum):
    """Alarms a station raises at the site about itself."""

    journal_forged = "journal_forged"
    journal_missing = "journal_missing"
    journal_rolled_back = "journal_rolled_back"
    journal_unreadable = "journal_unreadable"


class StationAlarm(_Body):
    """Something the station found wrong with itself, for the site's audit log."""

    code: AlarmCode
    detail: str = Field(max_length=500, pattern=TEXT_PATTERN, strict=True)


class AlarmRecorded(_Body):
    """The audit entry the site wrote for an alarm."""

    code: AlarmCode
    audit_seq: int


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
    """Return the AAD binding a sealed template or application to its grant and device.

    v2: the sealed text is deflated (``FIRMWARE_ENCODING``); a v1 envelope never opens as one.
    """
    return f"provisioner/{kind}/v2|{grant_id}|{device_id}".encode()


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


# --- field updates (docs/updates-protocol.md): device ↔ update listener -------------------

_U32 = Field(ge=0, le=0xFFFFFFFF)


class UpdateRequestBody(_Body):
    """A device's signed request (spec §3), fields of the 40 canonical bytes plus the MAC."""

    device_id: int = _U32
    current_version: int = _U32
    security_counter: int = _U32
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$")
    mac: str = Field(pattern=r"^[0-9a-f]{128}$")


PACKAGE_CONTENT_TYPE = "application/octet-stream"  # Accept it: the package as the raw body
DELIVERY_ID_HEADER = "Provisioner-Delivery-Id"  # ... with the delivery's numbers in headers
VERSION_HEADER = "Provisioner-Version"


class UpdateResponse(_Body):
    """A delivery: the package (manifest || signature || ciphertext), standard base64 (the
    answer when the request does not accept ``PACKAGE_CONTENT_TYPE``)."""

    delivery_id: int
    version: int
    package: str


class ResultBody(_Body):
    """A device's install outcome for one delivery (spec §6), with its MAC."""

    device_id: int = _U32
    outcome: str = Field(pattern=r"^(installed|rolled_back)$")
    reason: str = Field(pattern=r"^[a-z_]{1,32}$")
    running_version: int = _U32
    security_counter: int = _U32
    mac: str = Field(pattern=r"^[0-9a-f]{128}$")


class ResultAck(_Body):
    """The site stored the outcome."""

    delivery_id: int
    status: str
