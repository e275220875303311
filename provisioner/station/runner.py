"""The station runner: the one place that performs effects, in the order STYLE §5 fixes."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

from hex_generator import Image, decode_device_id, is_zone_blank
from hw_profiles import Profile, load_profile
from provisioner import wire
from provisioner.crypto.secret import Secret
from provisioner.errors import (
    AlreadyProvisioned,
    DuplicateChip,
    FlashError,
    IndexReused,
    InvalidRequest,
    OrderNotFound,
    ProvisionerError,
    ReadoutProtected,
    Refused,
    SiteBusy,
    SiteProtocolError,
    SiteUnreachable,
)
from provisioner.flash.backend import FlashBackend, ProgressEvent
from provisioner.station import imaging, presence
from provisioner.station.board import BoardTrack
from provisioner.station.engine import Attempt, AttemptState, Event, EventKind
from provisioner.station.events import BoardAwaited, BoardFinished, Listener
from provisioner.station.journal import Journal
from provisioner.station.keystore import KeyStore
from provisioner.station.presence import Connector
from provisioner.station.recovery import RecoveryAction, plan_recovery
from provisioner.station.reports import PendingReport, PendingReports
from provisioner.station.site_client import SiteClient

CRASH_ENV = "PROVISIONER_CRASH_AT"
MAX_INDEX_JUMPS = 3


class StationRunner:
    """Provisions boards for one station; thread-safe, one instance per station process."""

    def __init__(
        self,
        *,
        station_id: str,
        client: SiteClient,
        journal: Journal,
        keystore: KeyStore,
        transport_key: Secret,
        profiles: Callable[[str], Profile] = load_profile,
    ) -> None:
        self.station_id = station_id
        self.client = client
        self.journal = journal
        self.keystore = keystore
        self._transport_key = transport_key
        self._profiles = functools.lru_cache(maxsize=16)(profiles)
        self._grant_lock = threading.Lock()
        self._orders: dict[str, wire.OrderSummary] = {}
        self._crash_at = os.environ.get(CRASH_ENV)
        self.reports = PendingReports(self._resend)
        highest = journal.highest_index()
        if highest is not None:
            keystore.skip_to(highest + 1)

    # --- operator ------------------------------------------------------------------------

    def sign_in(self, operator_id: str, pin: str) -> None:
        """Open an operator session (raises ``Refused`` subclasses or ``SiteUnreachable``)."""
        self.client.sign_in(operator_id, pin)

    def list_orders(self) -> list[wire.OrderSummary]:
        """Return the open orders this station may serve (with produced/remaining counts)."""
        orders = self.client.list_orders()
        self._orders = {order.order_id: order for order in orders}
        return orders

    # --- one board -----------------------------------------------------------------------

    def await_next_board(self, order_id: str, location: str, connect: Connector,
                         previous_chip_uid: str | None, listener: Listener,
                         stop: threading.Event, *, retry_same: bool = False) -> bool:
        """Wait until the operator swapped another board in at ``location`` (False: stopped).

        The location is looked at with the order's profile; ``previous_chip_uid`` is the chip
        last finished there (None when its UID could not be read); ``retry_same`` (it failed):
        the same chip counts again once it was taken out and put back.
        """
        try:
            profile = self._profile_for(order_id)
        except ProvisionerError:
            return not stop.is_set()  # provision_board reports why in the operator's words
        done = f"chip {previous_chip_uid} done: " if previous_chip_uid else ""
        listener(BoardAwaited(location, previous_chip_uid, f"{done}insert next board"))
        return presence.wait_for_next_board(
            connect, profile, previous_chip_uid, stop,
            lambda: listener(BoardAwaited(location, previous_chip_uid,
                                          "board removed: insert next board")),
            retry_same=retry_same)

    def provision_board(
        self, order_id: str, location: str, connect: Connector, listener: Listener
    ) -> BoardFinished:
        """Provision the board at ``location`` for ``order_id``, reached with the order's profile.

        The profile is always the order's (as the site names it, with its hash checked), so a
        board of another kind is refused (``chip_mismatch``) whichever front end asked.
        Never raises for a board-level failure: refusals, flash errors, site outages and even
        unexpected exceptions end as ``BoardFinished(passed=False, code=...)``, and a grant the
        site holds is reported as failed (or left to ``recover`` if the site is unreachable).
        """
        try:
            profile = self._profile_for(order_id)
        except ProvisionerError as exc:
            attempt = Attempt(uuid.uuid4().hex, location, order_id, profile="")
            board = BoardTrack(self._record, attempt, listener)
            return self._settle_failure(board, exc)
        attempt = Attempt(uuid.uuid4().hex, location, order_id, profile.name)
        board = BoardTrack(self._record, attempt, listener)
        progress = board.progress
        try:
            backend = connect(profile)
            try:
                backend.open()
                self._run(board, profile, backend, progress)
            finally:
                backend.close()  # also after a failed open (a wrong chip): release the port
        except Exception as exc:  # any failure ends this board only, reported if granted
            return self._settle_failure(board, exc)
        return self._result(board)

    def _result(self, board: BoardTrack) -> BoardFinished:
        """The attempt's outcome, announced; a report the site has not taken is pending."""
        pending = self.reports.holds(board.attempt.attempt_id)
        result = replace(board.finished(), report_pending=pending)
        board.listener(result)
        return result

    def _run(self, board: BoardTrack, profile: Profile, backend: FlashBackend,
             progress: Callable[[ProgressEvent], None]) -> None:
        try:
            chip_uid = backend.read_uid().hex()
            self._check_chip(chip_uid, profile, backend)
        except ReadoutProtected as exc:
            # Only a provisioned chip is readout-protected; its ID zone cannot be shown.
            raise AlreadyProvisioned(f"chip is readout-protected ({exc})") from exc
        grant, key = self._grant_and_key(board, chip_uid, profile)
        template: Image | None = None
        application: Image | None = None
        image: Image | None = None
        try:
            template, application = imaging.open_grant_images(self._transport_key, grant)
            layout = profile.patch_layout()
            image, image_sha256 = imaging.build_board_image(template, layout, grant.device_id, key,
                                                            application)
            key.wipe()
            template.wipe()
            board.step(Event(EventKind.key_derived, image_sha256=image_sha256),
                       f"image {image_sha256[:16]}… ready")
            board.step(Event(EventKind.flash_started), "erasing and programming")
            segments = imaging.segments_of(image)
            erase = [(layout.image_start, layout.image_end)]
            if application is not None:  # its pages too (the template's range is erased whole)
                erase += application.ranges()
                application.wipe()
            with board.timed("erase"):
                backend.erase(erase, progress)
            with board.timed("program"):
                backend.program(segments, progress)
            with board.timed("verify"):
                backend.verify(segments, progress)
        finally:
            key.wipe()
            if template is not None:
                template.wipe()
            if application is not None:
                application.wipe()
            if image is not None:
                image.wipe()
        board.step(Event(EventKind.verified, image_sha256=board.attempt.image_sha256),
                   "verified")
        self._finish(board, profile, backend)

    def _check_chip(self, chip_uid: str, profile: Profile, backend: FlashBackend) -> None:
        zone = profile.id_zone
        found = backend.read(zone.address, zone.size_bytes)
        if not is_zone_blank(found, zone):
            device_id = decode_device_id(found, zone)
            if device_id not in self.journal.failed_device_ids(chip_uid):
                raise AlreadyProvisioned(
                    f"chip {chip_uid} already carries device ID {device_id}", device_id=device_id
                )
        if self.journal.is_chip_programmed(chip_uid):
            raise DuplicateChip(f"chip {chip_uid} was already programmed at this station")

    def _grant_and_key(
        self, board: BoardTrack, chip_uid: str, profile: Profile
    ) -> tuple[wire.GrantResponse, Secret]:
        """Ask for a grant and derive its key, serialised so keys come in index order."""
        with self._grant_lock:
            index = self.keystore.next_index
            kind = EventKind.uid_read
            for _ in range(MAX_INDEX_JUMPS + 1):
                request = wire.GrantRequest(
                    request_id=uuid.uuid4().hex, chip_uid=chip_uid, drbg_index=index
                )
                board.step(Event(kind, chip_uid=chip_uid, request_id=request.request_id,
                                 drbg_index=index), "asking the site for a device ID")
                try:
                    grant = self.client.request_grant(board.attempt.order_id, request)
                    break
                except IndexReused as exc:
                    if exc.expected <= index:
                        raise
                    self.keystore.skip_to(exc.expected)  # jump forward, never back
                    index, kind = exc.expected, EventKind.regrant
            else:
                raise IndexReused(f"site kept moving the index past {index}", expected=index)
            board.step(Event(EventKind.granted, grant_id=grant.grant_id,
                             device_id=grant.device_id, drbg_index=grant.drbg_index),
                       f"granted device ID {grant.device_id}")
            if grant.drbg_index != index:
                raise InvalidRequest(f"site granted index {grant.drbg_index}, asked {index}")
            if grant.profile != profile.name or grant.profile_sha256 != profile.sha256:
                raise InvalidRequest(
                    f"grant profile {grant.profile} ({grant.profile_sha256[:12]}…) differs from "
                    f"the local {profile.name} ({profile.sha256[:12]}…)"
                )
            return grant, self.keystore.key_at(index, grant.key_size_bytes)

    def _finish(self, board: BoardTrack, profile: Profile, backend: FlashBackend | None) -> None:
        """Protect if due and the chip is here, then report the verified digest."""
        level = profile.readout_protection.level
        protected = board.attempt.state is AttemptState.locked
        if not protected and level > 0 and backend is not None:
            with board.timed("protect"):
                backend.protect(level)
            board.step(Event(EventKind.locked), f"readout protection level {level} applied")
            protected = True
        board.step(Event(EventKind.reported), "reporting to the site")
        try:
            self._report(board, wire.AttemptResult.success, protected=protected)
        except (SiteUnreachable, SiteBusy) as exc:
            self._hold_report(board, exc, protected=protected)

    def _hold_report(self, board: BoardTrack, exc: ProvisionerError, *, protected: bool) -> None:
        """Keep the report the site did not take; it is resent in the background."""
        self.reports.add(PendingReport(board.attempt, board.listener, protected))
        board.attempt = replace(board.attempt, code=_failure_code(exc), detail=str(exc))

    def _report(self, board: BoardTrack, result: wire.AttemptResult, *, protected: bool = False
                ) -> None:
        """Send the completion announced by the last journal row; journal its acknowledgement."""
        attempt = board.attempt
        assert attempt.grant_id is not None
        success = result is wire.AttemptResult.success
        request = wire.CompleteRequest(
            request_id=f"{attempt.attempt_id}-complete",
            result=result,
            image_sha256=attempt.image_sha256 if success else None,
            verified=success,
            protected=protected,
            timings_ms=board.timings_ms,
            error_code=None if success else attempt.code,
            error=None if success else wire.printable(attempt.detail) or None,
        )
        answer = self.client.complete(attempt.grant_id, request)
        board.step(Event(EventKind.acknowledged),
                   f"device {answer.device_id} {answer.status} at the site")

    def _resend(self, report: PendingReport) -> bool:
        """Send a pending report again (same request id); True once the site answered."""
        attempt = report.attempt
        board = BoardTrack(self._record, attempt, report.listener, fresh=False, quiet=True)
        success = attempt.state is AttemptState.reported
        try:
            self._report(board, wire.AttemptResult.success if success
                         else _failure_result(attempt), protected=report.protected)
        except (SiteUnreachable, SiteBusy, SiteProtocolError):
            return False
        except Refused as exc:  # the site's answer is final: close the attempt with it
            board.step(Event(EventKind.acknowledged), f"closed: {exc}")
        board.listener(board.finished())
        return True

    def settle_pending(self) -> int:
        """Resend every pending report now; return how many the site still has not taken."""
        return self.reports.settle_now()

    def _settle_failure(self, board: BoardTrack, exc: Exception) -> BoardFinished:
        """End the attempt as refused/failed, tell the site when it holds a grant."""
        code = exc.code if isinstance(exc, Refused) else _failure_code(exc)
        attempt = board.attempt
        lost_answer = attempt.state is AttemptState.uid_read and isinstance(
            exc, SiteUnreachable | SiteProtocolError
        )
        if attempt.is_terminal or lost_answer:
            # The failure came while reporting, or the site may hold a grant whose answer was
            # lost: leave the attempt open; ``recover`` settles it with the same request_id.
            board.attempt = replace(attempt, code=code, detail=str(exc))
            if lost_answer and attempt.drbg_index is not None:
                self.keystore.skip_to(attempt.drbg_index + 1)  # burn it: never asked twice
        else:
            kind = EventKind.refused if isinstance(exc, Refused) else EventKind.failed
            board.step(Event(kind, code=code, detail=str(exc)), str(exc))
            if board.attempt.grant_id is None:
                board.step(Event(EventKind.acknowledged), "closed locally")
            else:
                sent = board.attempt
                try:
                    self._report(board, wire.AttemptResult.failure)
                except (SiteUnreachable, Refused) as report_exc:
                    if isinstance(report_exc, SiteUnreachable | SiteBusy):
                        self.reports.add(PendingReport(sent, board.listener, False))
                    board.attempt = replace(board.attempt, detail=f"{exc}; {report_exc}")
        return self._result(board)

    # --- restart -------------------------------------------------------------------------

    def recover(self, attached: Mapping[str, Connector], listener: Listener
                ) -> list[BoardFinished]:
        """Settle every attempt a crash left open (see ``recovery``); returns their outcomes.

        ``attached`` maps locations to connectors; each attempt's board is reached with the
        profile the attempt was made with.
        """
        results: list[BoardFinished] = []
        for attempt in self.journal.open_attempts():
            action = plan_recovery(attempt)
            if action is None:
                continue
            board = BoardTrack(self._record, attempt, listener, fresh=False)
            try:
                self._recover_one(board, action, attached.get(attempt.location))
            except Refused as exc:  # the site's answer is final: close the attempt with it
                if not board.attempt.is_terminal:
                    board.step(Event(EventKind.failed, code=exc.code, detail=str(exc)), str(exc))
                board.step(Event(EventKind.acknowledged), f"closed: {exc}")
            except (SiteUnreachable, SiteProtocolError) as exc:  # stays open for next time
                board.attempt = replace(board.attempt, code=_failure_code(exc), detail=str(exc))
            results.append(self._result(board))
        return results

    def _recover_one(self, board: BoardTrack, action: RecoveryAction,
                     connect: Connector | None) -> None:
        attempt = board.attempt
        if action is RecoveryAction.close_locally:
            if not attempt.is_terminal:
                board.step(Event(EventKind.failed, code="station_restart",
                                 detail="station restarted before the grant request"), "closed")
            board.step(Event(EventKind.acknowledged), "closed locally")
        elif action is RecoveryAction.settle_grant:
            self._settle_grant(board)
        elif action is RecoveryAction.report_failed:
            self._fail_and_report(board, "station_restart", "station restarted before flashing")
        elif action is RecoveryAction.reverify:
            self._reverify(board, connect)
        elif action is RecoveryAction.finish:
            profile = self._profiles(attempt.profile)
            with self._attached_chip(connect, attempt) as chip:
                if (chip is not None and attempt.state is AttemptState.verified
                        and not self._digest_matches(chip, attempt)):
                    self._fail_and_report(board, "verify_mismatch", "restart: digest differs")
                else:
                    self._finish(board, profile, chip)
        else:
            success = attempt.state is AttemptState.reported
            self._report(board, wire.AttemptResult.success if success else
                         _failure_result(attempt), protected=False)

    def _settle_grant(self, board: BoardTrack) -> None:
        attempt = board.attempt
        assert attempt.chip_uid is not None
        assert attempt.request_id is not None
        assert attempt.drbg_index is not None
        request = wire.GrantRequest(request_id=attempt.request_id, chip_uid=attempt.chip_uid,
                                    drbg_index=attempt.drbg_index)
        with self._grant_lock:
            self.keystore.skip_to(attempt.drbg_index + 1)  # the index is burned either way
            try:
                grant = self.client.request_grant(attempt.order_id, request)
            except Refused as exc:
                board.step(Event(EventKind.refused, code=exc.code, detail=str(exc)), str(exc))
                board.step(Event(EventKind.acknowledged), "closed locally")
                return
        board.step(Event(EventKind.granted, grant_id=grant.grant_id, device_id=grant.device_id,
                         drbg_index=grant.drbg_index), f"grant {grant.grant_id} settled")
        self._fail_and_report(board, "station_restart", "station restarted before flashing")

    def _reverify(self, board: BoardTrack, connect: Connector | None) -> None:
        attempt = board.attempt
        with self._attached_chip(connect, attempt) as chip:
            if chip is None:
                board.step(Event(EventKind.outcome_lost, code="outcome_unknown",
                                 detail="station restarted while flashing; board not attached"),
                           "outcome unknown")
                self._report(board, wire.AttemptResult.unknown)
            elif self._digest_matches(chip, attempt):
                board.step(Event(EventKind.verified, image_sha256=attempt.image_sha256),
                           "re-verified after restart")
                self._finish(board, self._profiles(attempt.profile), chip)
            else:
                self._fail_and_report(board, "verify_mismatch", "restart: digest differs")

    def _digest_matches(self, chip: FlashBackend, attempt: Attempt) -> bool:
        """Whether the attached chip's image range hashes to the journaled digest."""
        layout = self._profiles(attempt.profile).patch_layout()
        found = chip.read(layout.image_start, layout.image_end - layout.image_start)
        actual = hashlib.sha256(found).hexdigest()
        return attempt.image_sha256 is not None and hmac.compare_digest(
            actual, attempt.image_sha256
        )

    def _fail_and_report(self, board: BoardTrack, code: str, detail: str) -> None:
        board.step(Event(EventKind.failed, code=code, detail=detail), detail)
        self._report(board, wire.AttemptResult.failure)

    @contextmanager
    def _attached_chip(self, connect: Connector | None, attempt: Attempt
                       ) -> Iterator[FlashBackend | None]:
        """Yield the opened backend when it reaches the attempt's chip, else None."""
        if connect is None:
            yield None
            return
        try:
            backend = connect(self._profiles(attempt.profile))
        except (ProvisionerError, OSError):
            yield None
            return
        try:
            try:
                backend.open()
                same = backend.read_uid().hex() == attempt.chip_uid
            except (FlashError, OSError):
                same = False
            yield backend if same else None
        finally:
            backend.close()

    # --- plumbing ------------------------------------------------------------------------

    def _profile_for(self, order_id: str) -> Profile:
        order = self._orders.get(order_id)
        if order is None:
            self.list_orders()
            order = self._orders.get(order_id)
        if order is None:
            raise OrderNotFound(f"order {order_id} is not open for station {self.station_id}")
        profile = self._profiles(order.profile)
        if profile.sha256 != order.profile_sha256:
            raise InvalidRequest(f"local profile {profile.name} differs from the order's")
        return profile

    def _record(self, attempt: Attempt, previous: Attempt | None = None) -> None:
        """Journal the snapshot (committed), honouring the crash-test hook around it.

        ``PROVISIONER_CRASH_AT=<state>`` kills the process right after that state is journaled
        (before its effect); ``<state>:after`` right after the effect it announced, before the
        next row is journaled.
        """
        if (previous is not None and not previous.closed
                and self._crash_at == f"{previous.state.value}:after"):
            os.kill(os.getpid(), signal.SIGKILL)
        self.journal.append(attempt)
        if self._crash_at == attempt.state.value and not attempt.closed:
            os.kill(os.getpid(), signal.SIGKILL)

    def close(self) -> None:
        """Stop resending reports, wipe the session keys, close the journal and the site."""
        self.reports.close()
        self.keystore.close()
        self._transport_key.wipe()
        self.journal.close()
        self.client.close()


def _failure_code(exc: Exception) -> str:
    """Return a snake_case code for a failure: the wire code, else the error class name."""
    if isinstance(exc, Refused):
        return exc.code
    name = type(exc).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _failure_result(attempt: Attempt) -> wire.AttemptResult:
    if attempt.state is AttemptState.unknown:
        return wire.AttemptResult.unknown
    return wire.AttemptResult.failure
