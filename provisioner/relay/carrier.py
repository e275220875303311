"""One relay session: report an earlier outcome, carry the request, the package, the result."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from provisioner.errors import ResultAlreadyReported, SiteUnreachable
from provisioner.relay.site_updates import UpdateSite
from provisioner.update.codec import MAC_SIZE, REQUEST_SIZE, RESULT_SIZE, ResultReport
from provisioner.update.link import Frame, LinkError, Stream, read_frame, write_frame
from provisioner.update.versions import format_version

SITE_ATTEMPTS = 3  # the same signed bytes each time: the site answers a retry idempotently
RETRY_DELAY_S = 1.0

_T = TypeVar("_T")


def _with_retries(call: Callable[[], _T], progress: Callable[[str], None]) -> _T:
    """Run a site call, retrying it unchanged when the site's answer did not arrive.

    The request and result are signed by the device, so a retry is byte-identical: the site
    answers a lost delivery again (spec §4) and acknowledges a result it already stored.
    """
    for attempt in range(1, SITE_ATTEMPTS):
        try:
            return call()
        except SiteUnreachable as exc:
            progress(f"no answer from the site ({exc.reason}); sending the same signed "
                     f"bytes again ({attempt + 1}/{SITE_ATTEMPTS})")
            time.sleep(RETRY_DELAY_S * attempt)
    return call()


@dataclass
class RelaySession:
    """What one session carried (ids and outcomes only: nothing secret, nothing plaintext)."""

    earlier: list[ResultReport] = field(default_factory=list)
    delivery_id: int | None = None
    result: ResultReport | None = None


def _expect(stream: Stream, kind: Frame) -> bytes:
    got, payload = read_frame(stream)
    if got == Frame.error:
        raise LinkError(f"device error: {payload.decode('utf-8', 'replace')}")
    if got != kind:
        raise LinkError(f"device answered {got.name}, expected {kind.name}")
    return payload


def _split(payload: bytes, size: int, what: str) -> tuple[bytes, bytes]:
    if len(payload) != size + MAC_SIZE:
        raise LinkError(f"device sent a {len(payload)}-byte {what}, expected {size + MAC_SIZE}")
    return payload[:size], payload[size:]


def _forward_result(stream: Stream, site: UpdateSite, payload: bytes,
                    progress: Callable[[str], None]) -> ResultReport:
    report, mac = _split(payload, RESULT_SIZE, "result report")
    try:
        parsed = _with_retries(lambda: site.report_result(report, mac), progress)
    except ResultAlreadyReported:
        parsed = ResultReport.parse(report)  # stored by an earlier session: acknowledge it
    write_frame(stream, Frame.ack_result, struct.pack("<I", parsed.delivery_id))
    return parsed


def carry_update(stream: Stream, site: UpdateSite,
                 progress: Callable[[str], None] = lambda _: None) -> RelaySession:
    """Run one session over the device link.

    Raises:
        LinkError: the device went silent or sent something unexpected (a power cut mid-install
            shows up here; the device reports it at the next session).
        Refused: the site refused the request (its code says why).
        SiteUnreachable: no answer after ``SITE_ATTEMPTS`` tries of the same bytes.
    """
    session = RelaySession()
    write_frame(stream, Frame.get_pending_result)
    pending = _expect(stream, Frame.pending_result)
    if pending:
        earlier = _forward_result(stream, site, pending, progress)
        session.earlier.append(earlier)
        progress(f"reported earlier outcome of delivery {earlier.delivery_id}: "
                 f"{earlier.outcome.value} ({earlier.reason.name})")
    write_frame(stream, Frame.get_request)
    request, mac = _split(_expect(stream, Frame.request), REQUEST_SIZE, "request")
    progress("device request signed; asking the site")
    session.delivery_id, package = _with_retries(
        lambda: site.request_update(request, mac), progress)
    progress(f"delivery {session.delivery_id}: {len(package)} sealed bytes; device installing")
    write_frame(stream, Frame.package, package)
    session.result = _forward_result(stream, site, _expect(stream, Frame.result), progress)
    progress(f"device {session.result.outcome.value} "
             f"(reason {session.result.reason.name}); now runs "
             f"{format_version(session.result.running_version)}")
    return session
