"""Which chip sits at a bench location, and waiting for the operator to swap in the next one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum

from hw_profiles import Profile
from provisioner.errors import ChipMismatch, FlashError, ReadoutProtected
from provisioner.flash.backend import FlashBackend

Connector = Callable[[Profile], FlashBackend]
"""Builds the backend of one location for a profile (the order's: never a local choice)."""

POLL_S = 1.0


class Presence(StrEnum):
    """What one look at a location found."""

    absent = "absent"  # nothing answers: no board, or it is being swapped
    chip = "chip"  # a chip of the profile's kind whose UID could be read
    protected = "protected"  # a chip answers but hides its UID (readout protection)
    foreign = "foreign"  # a chip of another kind (wrong profile)


@dataclass(frozen=True, slots=True)
class Look:
    """The outcome of one look; ``chip_uid`` only for ``Presence.chip``."""

    presence: Presence
    chip_uid: str | None = None


def look(connect: Connector, profile: Profile) -> Look:
    """Open the location, read the chip UID and close it again (never raises a FlashError)."""
    try:
        backend = connect(profile)
    except (FlashError, OSError):
        return Look(Presence.absent)
    try:
        backend.open()
        return Look(Presence.chip, backend.read_uid().hex())
    except ChipMismatch:
        return Look(Presence.foreign)
    except ReadoutProtected:
        return Look(Presence.protected)
    except (FlashError, OSError):
        return Look(Presence.absent)
    finally:
        with suppress(FlashError, OSError):  # gone while we looked: the next look says so
            backend.close()  # also after a failed open: the port must not stay open


def is_next_board(found: Look, previous_chip_uid: str | None, removed: bool, *,
                  retry_same: bool = False) -> bool:
    """Whether ``found`` is the board to provision next at the location.

    A readable UID different from the previous one is a new chip. A chip that hides its UID
    or is of another kind counts only after the location was seen empty: otherwise it is
    most likely the board just finished (readout-protected now) still sitting there. With
    ``retry_same`` (the previous board failed) the same chip counts once it was re-seated.
    """
    if found.presence is Presence.chip:
        return found.chip_uid != previous_chip_uid or (retry_same and removed)
    return found.presence is not Presence.absent and removed


def wait_for_next_board(connect: Connector, profile: Profile, previous_chip_uid: str | None,
                        stop: threading.Event, on_removed: Callable[[], None],
                        poll_s: float = POLL_S, *, retry_same: bool = False) -> bool:
    """Look at the location until another board is there (True) or ``stop`` is set (False).

    ``previous_chip_uid`` is the chip last finished there (None when its UID was never read);
    ``on_removed`` is called once, when the location is first seen empty; ``retry_same``:
    see ``is_next_board``.
    """
    removed = False
    while not stop.is_set():
        found = look(connect, profile)
        if is_next_board(found, previous_chip_uid, removed, retry_same=retry_same):
            return True
        if found.presence is Presence.absent and not removed:
            removed = True
            on_removed()
        stop.wait(poll_s)
    return False
