"""Grant and completion rules of the site (pure policy)."""

from __future__ import annotations

import pytest

from provisioner.errors import (
    ChipQuarantined,
    DuplicateChip,
    IndexOutOfWindow,
    IndexReused,
    OrderClosed,
    QuotaExhausted,
    Refused,
    StationInactive,
    StationNotAllowed,
)
from provisioner.site.policy import (
    MAX_ATTEMPTS_PER_CHIP,
    ChipSnapshot,
    OrderSnapshot,
    StationSnapshot,
    decide_completion,
    decide_grant,
)
from provisioner.wire import DeviceStatus

ORDER = OrderSnapshot("o-1", "open", 10, 3, 2, frozenset({"ST-1"}))
STATION = StationSnapshot("ST-1", "active", 7)
NEW_CHIP = ChipSnapshot("00112233")
WINDOW = 100


def test_new_chip_is_granted_without_a_device_id() -> None:
    decision = decide_grant(ORDER, STATION, NEW_CHIP, 7, index_window=WINDOW)
    assert decision.device_id is None
    assert decision.drbg_index == 7


def test_index_ahead_of_expected_is_allowed() -> None:
    assert decide_grant(ORDER, STATION, NEW_CHIP, 12, index_window=WINDOW).drbg_index == 12


def test_failed_chip_retries_with_its_device_id() -> None:
    chip = ChipSnapshot("00112233", 41, "o-1", DeviceStatus.failed, 1)
    assert decide_grant(ORDER, STATION, chip, 7, index_window=WINDOW).device_id == 41


@pytest.mark.parametrize(
    ("order", "station", "chip", "index", "error"),
    [
        (ORDER, StationSnapshot("ST-1", "suspended", 7), NEW_CHIP, 7, StationInactive),
        (ORDER, StationSnapshot("ST-1", "revoked", 7), NEW_CHIP, 7, StationInactive),
        (OrderSnapshot("o-1", "closed", 10, 0, 0, frozenset({"ST-1"})), STATION, NEW_CHIP, 7,
         OrderClosed),
        (OrderSnapshot("o-1", "open", 10, 0, 0, frozenset({"ST-2"})), STATION, NEW_CHIP, 7,
         StationNotAllowed),
        (ORDER, STATION, NEW_CHIP, 6, IndexReused),
        (ORDER, STATION, ChipSnapshot("00112233", 5, "o-1", DeviceStatus.reserved, 0), 7,
         DuplicateChip),
        (ORDER, STATION, ChipSnapshot("00112233", 5, "o-1", DeviceStatus.programmed, 1), 7,
         DuplicateChip),
        (ORDER, STATION, ChipSnapshot("00112233", 5, "o-2", DeviceStatus.failed, 1), 7,
         DuplicateChip),
        (ORDER, STATION, ChipSnapshot("00112233", 5, "o-1", DeviceStatus.quarantined, 3), 7,
         ChipQuarantined),
        (OrderSnapshot("o-1", "open", 5, 3, 2, frozenset({"ST-1"})), STATION, NEW_CHIP, 7,
         QuotaExhausted),
    ],
)
def test_refusals(
    order: OrderSnapshot, station: StationSnapshot, chip: ChipSnapshot, index: int,
    error: type[Refused],
) -> None:
    with pytest.raises(error) as caught:
        decide_grant(order, station, chip, index, index_window=WINDOW)
    assert caught.value.code == error.code


def test_index_reused_names_the_expected_index() -> None:
    with pytest.raises(IndexReused) as caught:
        decide_grant(ORDER, STATION, NEW_CHIP, 3, index_window=WINDOW)
    assert caught.value.expected == 7
    assert "3" in caught.value.detail


@pytest.mark.parametrize("index", [7 + WINDOW + 1, 10**100])
def test_index_past_the_window_is_refused(index: int) -> None:
    assert decide_grant(ORDER, STATION, NEW_CHIP, 7 + WINDOW, index_window=WINDOW)
    with pytest.raises(IndexOutOfWindow) as caught:
        decide_grant(ORDER, STATION, NEW_CHIP, index, index_window=WINDOW)
    assert f"more than {WINDOW} past" in caught.value.detail


def test_duplicate_chip_wins_over_quota() -> None:
    full = OrderSnapshot("o-1", "open", 5, 5, 0, frozenset({"ST-1"}))
    chip = ChipSnapshot("00112233", 5, "o-1", DeviceStatus.programmed, 1)
    with pytest.raises(DuplicateChip):
        decide_grant(full, STATION, chip, 7, index_window=WINDOW)


def test_completion_outcomes() -> None:
    ok = decide_completion(succeeded=True, digest_matches=True, attempts=0)
    assert (ok.status, ok.attempts, ok.produced_delta, ok.reserved_delta) == (
        DeviceStatus.programmed, 1, 1, -1)
    bad = decide_completion(succeeded=True, digest_matches=False, attempts=0)
    assert bad.status == DeviceStatus.suspect
    assert bad.produced_delta == 1
    failed = decide_completion(succeeded=False, digest_matches=False, attempts=0)
    assert (failed.status, failed.attempts, failed.produced_delta) == (DeviceStatus.failed, 1, 0)
    last = decide_completion(succeeded=False, digest_matches=True,
                             attempts=MAX_ATTEMPTS_PER_CHIP - 1)
    assert last.status == DeviceStatus.quarantined
    assert last.reserved_delta == -1
