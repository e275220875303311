"""The one event stream from the station runner to its user interfaces (Textual and headless)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from provisioner.flash.backend import ProgressEvent
from provisioner.station.engine import AttemptState


@dataclass(frozen=True, slots=True)
class BoardUpdate:
    """A board's attempt moved to a new state."""

    location: str
    attempt_id: str
    state: AttemptState
    chip_uid: str | None
    device_id: int | None
    drbg_index: int | None
    message: str


@dataclass(frozen=True, slots=True)
class BoardProgress:
    """Erase/program/verify progress on one board."""

    location: str
    event: ProgressEvent


@dataclass(frozen=True, slots=True)
class BoardFinished:
    """A board's attempt ended; ``passed`` only when the site confirmed it programmed.

    ``report_pending``: the site has not taken the outcome yet (unreachable); the station
    resends it by itself and announces the settled outcome as another ``BoardFinished``.
    """

    location: str
    attempt_id: str
    state: AttemptState
    passed: bool
    code: str | None
    detail: str
    chip_uid: str | None
    device_id: int | None
    report_pending: bool = False

    @property
    def is_programmed_pending(self) -> bool:
        """Programmed and verified (and protected when due), only the site's answer missing."""
        return self.report_pending and self.state is AttemptState.reported


@dataclass(frozen=True, slots=True)
class BoardAwaited:
    """The location waits for the operator to swap in the next board (or saw it removed)."""

    location: str
    previous_chip_uid: str | None
    message: str


StationEvent = BoardUpdate | BoardProgress | BoardFinished | BoardAwaited
Listener = Callable[[StationEvent], None]


def ignore_events(event: StationEvent) -> None:
    """Discard events (a listener for callers that only want the return value)."""
