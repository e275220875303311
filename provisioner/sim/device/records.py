"""Boot state and event log records in flash (docs/updates-protocol.md §8), CRC-checked."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace
from enum import IntEnum

from hw_profiles import MemoryRegion
from provisioner.sim.device.flash import BoardFlash
from provisioner.update.codec import NONCE_SIZE, Outcome, Reason

_STATE = struct.Struct("<4sBBBxIIIIII16sIBB6x")
_STATE_MAGIC = b"PVBS"
_EVENT = struct.Struct("<IBB2xI")
EVENT_SIZE = 16
_OUTCOME_CODE = {Outcome.installed: 1, Outcome.rolled_back: 2}


class Pending(IntEnum):
    """Whether an install into the inactive slot is under way."""

    none = 0
    writing = 1


class Event(IntEnum):
    """Event log record types."""

    boot = 1
    request_sent = 2
    package_refused = 3
    install_started = 4
    slot_written = 5
    self_test_passed = 6
    installed = 7
    rolled_back = 8
    result_reported = 9


@dataclass(frozen=True, slots=True)
class BootState:
    """What the bootloader keeps across resets."""

    sequence: int = 0
    active_slot: int = 0
    pending: Pending = Pending.none
    running_version: int = 0
    security_counter: int = 0
    active_size: int = 0
    pending_version: int = 0
    pending_delivery_id: int = 0
    request_nonce: bytes = bytes(NONCE_SIZE)
    unreported_delivery_id: int = 0
    unreported_outcome: int = 0
    unreported_reason: int = 0

    def to_bytes(self) -> bytes:
        """The 64-byte record (CRC-32 last)."""
        body = _STATE.pack(
            _STATE_MAGIC, 1, self.active_slot, int(self.pending), self.sequence,
            self.running_version, self.security_counter, self.active_size,
            self.pending_version, self.pending_delivery_id, self.request_nonce,
            self.unreported_delivery_id, self.unreported_outcome, self.unreported_reason)
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def parse(cls, data: bytes) -> BootState | None:
        """The record in ``data`` (64 bytes), or None when erased, torn or foreign."""
        body, crc = data[:60], data[60:64]
        if body[:4] != _STATE_MAGIC or body[4] != 1 or struct.pack("<I", zlib.crc32(body)) != crc:
            return None
        (_, _, slot, pending, seq, running, counter, size, p_version, p_delivery, nonce,
         u_delivery, u_outcome, u_reason) = _STATE.unpack(body)
        if slot > 1 or pending > 1:
            return None
        return cls(seq, slot, Pending(pending), running, counter, size, p_version, p_delivery,
                   nonce, u_delivery, u_outcome, u_reason)

    def with_unreported(self, delivery_id: int, outcome: Outcome, reason: Reason) -> BootState:
        """This state with an outcome the site has not acknowledged yet."""
        return replace(self, unreported_delivery_id=delivery_id,
                       unreported_outcome=_OUTCOME_CODE[outcome], unreported_reason=int(reason))

    @property
    def unreported(self) -> tuple[int, Outcome, Reason] | None:
        """(delivery_id, outcome, reason) awaiting the site's acknowledgement."""
        if not self.unreported_delivery_id:
            return None
        outcome = Outcome.installed if self.unreported_outcome == 1 else Outcome.rolled_back
        return self.unreported_delivery_id, outcome, Reason(self.unreported_reason)


def read_state(flash: BoardFlash, region: MemoryRegion) -> BootState:
    """The valid record with the highest sequence, or the factory state when none."""
    page = flash.page_size_bytes
    found = [BootState.parse(flash.read(region.base + n * page, 64)) for n in (0, 1)]
    valid = [state for state in found if state is not None]
    return max(valid, key=lambda s: s.sequence) if valid else BootState()


def write_state(flash: BoardFlash, region: MemoryRegion, state: BootState) -> BootState:
    """Write ``state`` with the next sequence number to the page not holding the current one."""
    page = flash.page_size_bytes
    current = [BootState.parse(flash.read(region.base + n * page, 64)) for n in (0, 1)]
    sequences = [s.sequence if s is not None else -1 for s in current]
    target = 0 if sequences[0] <= sequences[1] else 1
    new = replace(state, sequence=max([*sequences, 0]) + 1)
    flash.erase_page(region.base + target * page)
    flash.program(region.base + target * page, new.to_bytes())
    return new


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One event log entry."""

    sequence: int
    event: Event
    reason: Reason
    value: int


def _parse_event(data: bytes) -> LogRecord | None:
    if struct.pack("<I", zlib.crc32(data[:12])) != data[12:16]:
        return None
    seq, event, reason, value = _EVENT.unpack(data[:12])
    if event not in Event._value2member_map_ or reason not in Reason._value2member_map_:
        return None
    return LogRecord(seq, Event(event), Reason(reason), value)


def read_log(flash: BoardFlash, region: MemoryRegion) -> list[LogRecord]:
    """Every intact record of both pages, in sequence order (torn records skipped)."""
    records = []
    for offset in range(0, region.size_bytes, EVENT_SIZE):
        record = _parse_event(flash.read(region.base + offset, EVENT_SIZE))
        if record is not None:
            records.append(record)
    return sorted(records, key=lambda r: r.sequence)


def append_log(flash: BoardFlash, region: MemoryRegion, event: Event, reason: Reason,
               value: int) -> LogRecord:
    """Append a record to the newest page; erase and use the other page when it is full."""
    page = flash.page_size_bytes
    records = read_log(flash, region)
    last = records[-1] if records else None
    newest_page = 0
    if last is not None:
        for n in (0, 1):
            start = region.base + n * page
            cells = [flash.read(start + o, EVENT_SIZE) for o in range(0, page, EVENT_SIZE)]
            if any((r := _parse_event(c)) is not None and r.sequence == last.sequence
                   for c in cells):
                newest_page = n
    record = LogRecord(1 if last is None else last.sequence + 1, event, reason, value)
    body = _EVENT.pack(record.sequence, int(event), int(reason), value)
    data = body + struct.pack("<I", zlib.crc32(body))
    for n in (newest_page, 1 - newest_page):
        start = region.base + n * page
        if n != newest_page:
            flash.erase_page(start)
        for offset in range(0, page, EVENT_SIZE):
            if flash.read(start + offset, EVENT_SIZE) == b"\xff" * EVENT_SIZE:
                flash.program(start + offset, data)
                return record
    raise AssertionError("unreachable: the other page was just erased")
