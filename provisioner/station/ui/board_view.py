"""What the bench shows for one board location, folded from the runner's event stream."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from provisioner.flash.backend import Operation
from provisioner.station.events import (
    BoardAwaited,
    BoardFinished,
    BoardProgress,
    BoardUpdate,
    StationEvent,
)


class Verdict(StrEnum):
    """Where a location stands between attempts."""

    idle = "idle"
    waiting = "waiting"  # for the operator to swap in the next board
    pending = "pending"  # programmed; the site has not taken its report yet
    running = "running"
    passed = "passed"
    failed = "failed"


@dataclass(frozen=True, slots=True)
class BoardView:
    """One bench row: the latest facts about the board at ``location``."""

    location: str
    verdict: Verdict = Verdict.idle
    attempt_id: str | None = None
    state: str = "idle"
    chip_uid: str | None = None
    device_id: int | None = None
    operation: Operation | None = None
    done_bytes: int = 0
    total_bytes: int = 0
    code: str | None = None
    detail: str = ""

    @property
    def percent(self) -> int:
        """Progress of the current operation, 0..100."""
        if self.total_bytes <= 0:
            return 0
        return min(100, self.done_bytes * 100 // self.total_bytes)

    @property
    def is_startable(self) -> bool:
        """Enter may start this location: nothing runs or waits there.

        After a board finished (passed or failed) Enter waits for the next one; r retries.
        """
        return self.verdict in (Verdict.idle, Verdict.passed, Verdict.failed, Verdict.pending)


def starting(view: BoardView) -> BoardView:
    """Return the row of a location whose worker was just started."""
    return BoardView(view.location, verdict=Verdict.running, state="starting")


def waiting(view: BoardView, message: str) -> BoardView:
    """Return the row of a location waiting for the operator to swap in the next board."""
    return BoardView(view.location, verdict=Verdict.waiting, state="insert next board",
                     chip_uid=view.chip_uid, detail=message)


def crashed(view: BoardView, reason: str) -> BoardView:
    """Return the row of a location whose worker could not reach the runner."""
    return replace(view, verdict=Verdict.failed, state="failed", operation=None,
                   code="station_error", detail=reason)


def fold(view: BoardView, event: StationEvent) -> BoardView:
    """Apply one runner event to the row it concerns."""
    if isinstance(event, BoardProgress):
        progress = event.event
        return replace(view, operation=progress.operation, done_bytes=progress.done_bytes,
                       total_bytes=progress.total_bytes)
    if isinstance(event, BoardUpdate):
        return replace(view, verdict=Verdict.running, state=event.state.value,
                       attempt_id=event.attempt_id,
                       chip_uid=event.chip_uid or view.chip_uid,
                       device_id=event.device_id if event.device_id is not None
                       else view.device_id)
    if isinstance(event, BoardAwaited):
        return waiting(view, event.message)
    return _finished(view, event)


def _finished(view: BoardView, result: BoardFinished) -> BoardView:
    if result.is_programmed_pending:
        verdict, state = Verdict.pending, "report pending"
    else:
        verdict = Verdict.passed if result.passed else Verdict.failed
        state = result.state.value
    return replace(view, verdict=verdict, state=state, attempt_id=result.attempt_id,
                   chip_uid=result.chip_uid or view.chip_uid,
                   device_id=result.device_id if result.device_id is not None else view.device_id,
                   operation=(view.operation if result.passed or result.is_programmed_pending
                              else None),
                   code=result.code, detail=result.detail)
