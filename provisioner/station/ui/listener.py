"""The runner listener a board worker hands over: turns station events into app messages."""

from __future__ import annotations

from textual.message_pump import MessagePump

from provisioner.flash.backend import Operation
from provisioner.station.events import (
    BoardAwaited,
    BoardFinished,
    BoardProgress,
    BoardUpdate,
    StationEvent,
)
from provisioner.station.ui.messages import (
    BoardChanged,
    BoardDone,
    BoardProgressed,
    BoardWaiting,
)


class BoardListener:
    """Post one board's events to ``target`` from any thread; progress at most once per percent.

    ``post_message`` is thread-safe in Textual, so the runner may call this from its worker
    thread. Progress is throttled here (and coalesced again by ``can_replace`` in the queue).
    """

    def __init__(self, target: MessagePump) -> None:
        self._target = target
        self._last: tuple[Operation, int] | None = None

    def __call__(self, event: StationEvent) -> None:
        if isinstance(event, BoardProgress):
            progress = event.event
            total = max(progress.total_bytes, 1)
            step = (progress.operation, progress.done_bytes * 100 // total)
            if step == self._last:
                return
            self._last = step
            self._target.post_message(BoardProgressed(event))
        elif isinstance(event, BoardUpdate):
            self._target.post_message(BoardChanged(event))
        elif isinstance(event, BoardFinished):
            self._target.post_message(BoardDone(event))
        elif isinstance(event, BoardAwaited):
            self._target.post_message(BoardWaiting(event))
