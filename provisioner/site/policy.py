"""Pure grant rules (design §3 step 3): decide over frozen snapshots, or raise the refusal."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.errors import (
    ChipQuarantined,
    DuplicateChip,
    IndexOutOfWindow,
    IndexReused,
    OrderClosed,
    QuotaExhausted,
    StationInactive,
    StationNotAllowed,
)
from provisioner.wire import DeviceStatus, OrderStatus

MAX_ATTEMPTS_PER_CHIP = 3
STATION_ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """The order as read under its row lock."""

    order_id: str
    status: str
    authorised_quantity: int
    produced: int
    reserved: int
    allowed_stations: frozenset[str]


@dataclass(frozen=True, slots=True)
class StationSnapshot:
    """The requesting station as read under its row lock."""

    station_id: str
    status: str
    next_index: int


@dataclass(frozen=True, slots=True)
class ChipSnapshot:
    """What the site already knows about a chip (``device_id`` None: never seen)."""

    chip_uid: str
    device_id: int | None = None
    order_id: str | None = None
    status: str | None = None
    attempts: int = 0


def require_active_station(station_id: str, status: str) -> None:
    """Refuse a station that is not active, in the words its operator acts on.

    Raises:
        StationInactive: a pending enrolment (confirm it first), a suspended or revoked
            station.
    """
    if status == "pending":
        raise StationInactive(
            f"station {station_id} has not confirmed its one-time enrolment "
            "(run `provisioner station enroll` with its bundle)"
        )
    if status != STATION_ACTIVE:
        raise StationInactive(f"station {station_id} is {status}")


@dataclass(frozen=True, slots=True)
class GrantDecision:
    """A granted request: reuse ``device_id`` of a failed chip, or allocate one when None."""

    device_id: int | None
    drbg_index: int


def decide_grant(
    order: OrderSnapshot, station: StationSnapshot, chip: ChipSnapshot, drbg_index: int,
    *, index_window: int,
) -> GrantDecision:
    """Return the decision for one grant request or raise its refusal.

    Checks, in order: station active, order open, station allowed, index not behind the
    station's next expected index and at most ``index_window`` past it (each skipped index is
    one DRBG step for the site, so this bounds the cost of one grant), chip neither
    quarantined nor already known (a chip whose last attempt failed may be retried on the
    same order), quota left.

    Raises:
        StationInactive, OrderClosed, StationNotAllowed, IndexReused, IndexOutOfWindow,
        ChipQuarantined, DuplicateChip, QuotaExhausted.
    """
    require_active_station(station.station_id, station.status)
    if order.status != OrderStatus.open:
        raise OrderClosed(f"order {order.order_id} is {order.status}")
    if station.station_id not in order.allowed_stations:
        raise StationNotAllowed(
            f"station {station.station_id} may not serve order {order.order_id}"
        )
    if drbg_index < station.next_index:
        raise IndexReused(
            f"DRBG index {drbg_index} is behind station {station.station_id}'s next index "
            f"{station.next_index}",
            expected=station.next_index,
        )
    if drbg_index - station.next_index > index_window:
        raise IndexOutOfWindow(
            f"DRBG index {drbg_index} is more than {index_window} past station "
            f"{station.station_id}'s next index {station.next_index} (site.json index_window)"
        )
    device_id = _check_chip(order, chip)
    if order.produced + order.reserved >= order.authorised_quantity:
        raise QuotaExhausted(
            f"order {order.order_id}: {order.produced} produced + {order.reserved} reserved "
            f"of {order.authorised_quantity} authorised"
        )
    return GrantDecision(device_id=device_id, drbg_index=drbg_index)


def _check_chip(order: OrderSnapshot, chip: ChipSnapshot) -> int | None:
    if chip.device_id is None:
        return None
    if chip.status == DeviceStatus.quarantined:
        raise ChipQuarantined(
            f"chip {chip.chip_uid} is quarantined after {chip.attempts} failed attempts"
        )
    retryable = (
        chip.status == DeviceStatus.failed
        and chip.order_id == order.order_id
        and chip.attempts < MAX_ATTEMPTS_PER_CHIP
    )
    if not retryable:
        raise DuplicateChip(
            f"chip {chip.chip_uid} already has device ID {chip.device_id} "
            f"({chip.status}, order {chip.order_id})"
        )
    return chip.device_id


@dataclass(frozen=True, slots=True)
class Completion:
    """The device's state after a completion is applied."""

    status: DeviceStatus
    attempts: int
    produced_delta: int
    reserved_delta: int


def decide_completion(*, succeeded: bool, digest_matches: bool, attempts: int) -> Completion:
    """Return the device's new status for a reported outcome (``attempts`` before this one).

    Success with a matching digest: programmed. Success with a different digest: suspect (it
    holds an image, so it counts as produced). Failure or unknown: the attempt is counted and
    the unit is released; at ``MAX_ATTEMPTS_PER_CHIP`` the chip is quarantined.
    """
    if succeeded:
        status = DeviceStatus.programmed if digest_matches else DeviceStatus.suspect
        return Completion(status, attempts + 1, produced_delta=1, reserved_delta=-1)
    total = attempts + 1
    status = DeviceStatus.quarantined if total >= MAX_ATTEMPTS_PER_CHIP else DeviceStatus.failed
    return Completion(status, total, produced_delta=0, reserved_delta=-1)
