"""Messages posted up to the station app: operator choices from screens, board events."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from provisioner import wire
from provisioner.station.events import BoardAwaited, BoardFinished, BoardProgress, BoardUpdate

# eq=False keeps Message identity semantics (and hashability) for Textual's queues.


@dataclass(eq=False)
class SignInSubmitted(Message):
    """The operator asked to sign in."""

    operator_id: str
    pin: str = field(repr=False)


@dataclass(eq=False)
class SignInFailed(Message):
    """The site refused the sign-in or could not be reached; ``reason`` is in operator words."""

    reason: str


@dataclass(eq=False)
class SignedIn(Message):
    """The operator is signed in; open attempts were settled and the orders loaded."""

    operator_id: str
    orders: list[wire.OrderSummary]
    recovered: list[BoardFinished]


@dataclass(eq=False)
class OrdersLoaded(Message):
    """A fresh list of orders with their counts; ``request`` orders answers to late requests."""

    orders: list[wire.OrderSummary]
    request: int


@dataclass(eq=False)
class SiteTrouble(Message):
    """A site call made on the operator's behalf failed; ``reason`` is in operator words."""

    reason: str
    unreachable: bool


@dataclass(eq=False)
class OrderChosen(Message):
    """The operator picked an order to produce."""

    order: wire.OrderSummary


class OrdersRequested(Message):
    """The operator asked to refresh the orders or to go back to them."""


class StartRequested(Message):
    """The operator pressed Enter on the bench: start every startable board."""


@dataclass(eq=False)
class RetryRequested(Message):
    """The operator asked to retry a failed board (``None``: the first failed one)."""

    location: str | None


class QuitRequested(Message):
    """The operator asked to quit (after the boards in flight finish)."""


@dataclass(eq=False)
class BoardChanged(Message):
    """A board's attempt moved to a new state."""

    update: BoardUpdate


@dataclass(eq=False)
class BoardProgressed(Message):
    """Erase/program/verify progress; a newer one for the same board replaces a queued one."""

    progress: BoardProgress

    def can_replace(self, message: Message) -> bool:
        """Let a newer progress message of the same board supersede this one in the queue."""
        return (isinstance(message, BoardProgressed)
                and message.progress.location == self.progress.location)


@dataclass(eq=False)
class BoardDone(Message):
    """A board's attempt ended (passed, refused, failed or unknown)."""

    result: BoardFinished


@dataclass(eq=False)
class BoardWaiting(Message):
    """A location waits for the operator to swap in the next board."""

    event: BoardAwaited


@dataclass(eq=False)
class BoardCrashed(Message):
    """A worker could not hand its board to the runner (e.g. the backend could not be built)."""

    location: str
    reason: str
