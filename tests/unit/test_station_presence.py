"""Waiting for the next board: which looks at a location count as another board."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from hw_profiles import Profile, load_profile
from provisioner.errors import ChipMismatch, LinkTimeout, ReadoutProtected
from provisioner.flash.backend import FlashBackend
from provisioner.station.presence import Look, Presence, is_next_board, wait_for_next_board

OLD, NEW = "aa" * 12, "bb" * 12


@pytest.mark.parametrize(("found", "removed", "expected"), [
    (Look(Presence.chip, OLD), False, False),  # the finished board is still there
    (Look(Presence.chip, OLD), True, False),  # the same board put back
    (Look(Presence.chip, NEW), False, True),  # swapped faster than one look
    (Look(Presence.protected), False, False),  # most likely the board just protected
    (Look(Presence.protected), True, True),  # another protected board after a removal
    (Look(Presence.foreign), False, False),
    (Look(Presence.foreign), True, True),  # a wrong-kind board: provisioning refuses it
    (Look(Presence.absent), True, False),
])
def test_what_counts_as_the_next_board(found: Look, removed: bool, expected: bool) -> None:
    assert is_next_board(found, OLD, removed) is expected


def test_a_failed_board_counts_again_once_it_was_re_seated() -> None:
    same = Look(Presence.chip, OLD)
    assert is_next_board(same, OLD, removed=False, retry_same=True) is False
    assert is_next_board(same, OLD, removed=True, retry_same=True) is True


class _Board:
    """A backend whose open/read_uid outcome is the next in ``script``."""

    def __init__(self, outcome: object) -> None:
        self._outcome = outcome

    def open(self) -> None:
        if isinstance(self._outcome, LinkTimeout | ChipMismatch):
            raise self._outcome

    def read_uid(self) -> bytes:
        if isinstance(self._outcome, ReadoutProtected):
            raise self._outcome
        assert isinstance(self._outcome, str)
        return bytes.fromhex(self._outcome)

    def close(self) -> None:
        pass


def _connector(script: list[object]) -> tuple[list[str], object]:
    looks: Iterator[object] = iter(script)
    seen: list[str] = []

    def connect(profile: Profile) -> FlashBackend:
        seen.append(profile.name)
        return _Board(next(looks))  # type: ignore[return-value]

    return seen, connect


def test_removal_is_said_once_then_a_protected_board_is_taken() -> None:
    absent = LinkTimeout("sync", "to 0x7F")
    seen, connect = _connector([OLD, absent, absent, ReadoutProtected("read UID")])
    removed: list[bool] = []
    found = wait_for_next_board(connect, load_profile("stm32f103c8"), OLD,  # type: ignore[arg-type]
                                threading.Event(), lambda: removed.append(True), poll_s=0)
    assert found is True
    assert removed == [True]
    assert seen == ["stm32f103c8"] * 4


def test_a_stop_ends_the_wait_without_a_board() -> None:
    stop = threading.Event()
    stop.set()
    _, connect = _connector([])
    assert wait_for_next_board(connect, load_profile("stm32f103c8"), OLD, stop,  # type: ignore[arg-type]
                               lambda: None, poll_s=0) is False
