"""Boot state and event log records in flash: round trips, torn writes, page alternation."""

from __future__ import annotations

from pathlib import Path

import pytest

from hw_profiles import load_profile
from provisioner.sim.device.flash import BoardFlash
from provisioner.sim.device.records import (
    EVENT_SIZE,
    BootState,
    Event,
    Pending,
    append_log,
    read_log,
    read_state,
    write_state,
)
from provisioner.update.codec import Outcome, Reason

PROFILE = load_profile("stm32f103c8")
assert PROFILE.update is not None
LAYOUT = PROFILE.update


@pytest.fixture
def flash(tmp_path: Path) -> BoardFlash:
    path = tmp_path / "flash.bin"
    path.write_bytes(b"\xff" * PROFILE.flash.size_bytes)
    return BoardFlash(path, PROFILE)


def test_blank_flash_is_the_factory_state(flash: BoardFlash) -> None:
    assert read_state(flash, LAYOUT.boot_state) == BootState()
    assert read_log(flash, LAYOUT.event_log) == []


def test_states_alternate_pages_and_the_newest_wins(flash: BoardFlash) -> None:
    region = LAYOUT.boot_state
    first = write_state(flash, region, BootState(running_version=1))
    second = write_state(flash, region, BootState(running_version=2, pending=Pending.writing))
    assert (first.sequence, second.sequence) == (1, 2)
    assert flash.read(region.base, 4) == b"PVBS"
    assert flash.read(region.base + 1024, 4) == b"PVBS"
    assert read_state(flash, region) == second
    third = write_state(flash, region, BootState(running_version=3))
    assert read_state(flash, region) == third
    # A torn third record (power lost while programming it): the second one is still there.
    page = 0 if flash.read(region.base + 8, 1) == b"\x03" else 1
    flash.erase_page(region.base + page * 1024)
    flash.program(region.base + page * 1024, third.to_bytes()[:30])
    assert read_state(flash, region) == second


def test_unreported_outcome_round_trips() -> None:
    state = BootState().with_unreported(7, Outcome.rolled_back, Reason.interrupted)
    assert BootState.parse(state.to_bytes()) == state
    assert state.unreported == (7, Outcome.rolled_back, Reason.interrupted)


def test_event_log_wraps_to_the_other_page_erasing_the_oldest(flash: BoardFlash) -> None:
    region = LAYOUT.event_log
    per_page = 1024 // EVENT_SIZE
    for n in range(per_page * 2 + 5):
        append_log(flash, region, Event.boot, Reason.none, n)
    records = read_log(flash, region)
    assert [r.sequence for r in records] == list(range(per_page + 1, 2 * per_page + 6))
    assert records[-1].value == 2 * per_page + 4


def test_a_torn_event_record_is_skipped(flash: BoardFlash) -> None:
    region = LAYOUT.event_log
    append_log(flash, region, Event.boot, Reason.none, 1)
    flash.program(region.base + EVENT_SIZE, b"\x02\x00\x00\x00\x08")  # half a record
    append_log(flash, region, Event.rolled_back, Reason.bad_digest, 9)
    assert [(r.sequence, r.event, r.reason) for r in read_log(flash, region)] == [
        (1, Event.boot, Reason.none), (2, Event.rolled_back, Reason.bad_digest)]


def test_flash_bits_only_go_from_one_to_zero(flash: BoardFlash) -> None:
    address = LAYOUT.slots[1].base
    flash.program(address, b"\x0f")
    flash.program(address, b"\xf0")
    assert flash.read(address, 1) == b"\x00"
    flash.erase_page(address)
    assert flash.read(address, 1) == b"\xff"
