"""One attempt in flight: advance the engine, journal the step, announce it to the listener."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from provisioner.flash.backend import ProgressEvent
from provisioner.station.engine import Attempt, AttemptState, Event, advance
from provisioner.station.events import (
    BoardFinished,
    BoardProgress,
    BoardUpdate,
    Listener,
    StationEvent,
)

_log = logging.getLogger("provisioner.station.runner")


class BoardTrack:
    """An attempt's snapshot, the journal writer it commits to and its guarded listener."""

    def __init__(self, record: Callable[[Attempt, Attempt | None], None], attempt: Attempt,
                 listener: Listener, *, fresh: bool = True, quiet: bool = False) -> None:
        self._record = record
        self.attempt = attempt
        self.listener = _guarded(listener)
        self.timings_ms: dict[str, float] = {}  # step -> duration, reported with the outcome
        if fresh:
            record(attempt, None)
        if not quiet:
            self.listener(self._update("board detected" if fresh
                                       else f"recovering from {attempt.state}"))

    def _update(self, message: str) -> BoardUpdate:
        a = self.attempt
        return BoardUpdate(a.location, a.attempt_id, a.state, a.chip_uid, a.device_id,
                           a.drbg_index, message)

    def step(self, event: Event, message: str) -> None:
        """Advance, journal (committed) and announce; the effect it names follows the call."""
        previous, self.attempt = self.attempt, advance(self.attempt, event)
        self._record(self.attempt, previous)
        _log.info("%s %s: %s", self.attempt.location, self.attempt.state, message)
        self.listener(self._update(message))

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Measure the step run inside the block (monotonic clock) into ``timings_ms``."""
        began = time.monotonic()
        try:
            yield
        finally:
            self.timings_ms[step] = (time.monotonic() - began) * 1000.0

    def progress(self, event: ProgressEvent) -> None:
        """Forward a backend progress event."""
        self.listener(BoardProgress(self.attempt.location, event))

    def finished(self) -> BoardFinished:
        """The attempt's outcome; passed only once the site acknowledged a success."""
        a = self.attempt
        passed = a.state is AttemptState.reported and a.closed
        return BoardFinished(a.location, a.attempt_id, a.state, passed, a.code,
                             a.detail or ("programmed" if passed else ""), a.chip_uid,
                             a.device_id)


def _guarded(listener: Listener) -> Listener:
    """Wrap a UI listener so its failure never interrupts a board (the journal stays right)."""

    def call(event: StationEvent) -> None:
        try:
            listener(event)
        except Exception:
            _log.exception("station event listener failed on %s", type(event).__name__)

    return call
