"""The emulated system bus: devices by address range, as a debugger's MEM-AP sees them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class BusFault(Exception):
    """An access the bus answers with an error response (the AHB-AP turns it into a FAULT)."""

    def __init__(self, address: int, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"bus fault at 0x{address:08X}: {reason}")


class Device(Protocol):
    """A memory-mapped device; offsets are relative to its base, sizes are 1, 2 or 4 bytes."""

    def read(self, offset: int, size: int) -> int:
        """Return the little-endian value of ``size`` bytes at ``offset``."""
        ...

    def write(self, offset: int, size: int, value: int) -> None:
        """Store the low ``size`` bytes of ``value`` at ``offset``."""
        ...


@dataclass(frozen=True, slots=True)
class Mapping:
    """One device mapped at ``[base, base + size_bytes)``."""

    base: int
    size_bytes: int
    device: Device


class RegisterFile:
    """Word registers that hold what is written; unwritten ones read their reset value or 0."""

    def __init__(self, reset_values: dict[int, int] | None = None,
                 read_only: frozenset[int] = frozenset()) -> None:
        self._values = dict(reset_values or {})
        self._read_only = read_only

    def read(self, offset: int, size: int) -> int:
        """Return the register at the aligned word, shifted to the byte lane of ``offset``."""
        word = self._values.get(offset & ~3, 0)
        return (word >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        """Merge ``value`` into the aligned word unless the register is read-only."""
        aligned = offset & ~3
        if aligned in self._read_only:
            return
        shift = 8 * (offset & 3)
        mask = ((1 << (8 * size)) - 1) << shift
        old = self._values.get(aligned, 0)
        self._values[aligned] = (old & ~mask) | ((value << shift) & mask)


class ReadAsZero:
    """Reserved space that reads 0 and ignores writes (unmodelled peripherals)."""

    def read(self, offset: int, size: int) -> int:
        """Return 0."""
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        """Ignore the write."""


class PowerRail:
    """The board's supply: with a budget set, it fails once that many flash bytes were written."""

    def __init__(self, budget_bytes: int | None) -> None:
        self._budget = budget_bytes
        self.lost = False
        self.on_loss: list[Callable[[], None]] = []

    def consume(self, size_bytes: int) -> bool:
        """Account for programming ``size_bytes``; False once power is gone (nothing written)."""
        if self.lost:
            return False
        if self._budget is not None:
            if self._budget < size_bytes:
                self.lost = True
                for listener in self.on_loss:
                    listener()
                return False
            self._budget -= size_bytes
        return True


class Bus:
    """Address decoder: the first mapping that contains an address serves it."""

    def __init__(self) -> None:
        self._mappings: list[Mapping] = []

    def attach(self, base: int, size_bytes: int, device: Device) -> None:
        """Map ``device`` at ``[base, base + size_bytes)``; earlier mappings take precedence."""
        self._mappings.append(Mapping(base, size_bytes, device))

    def _find(self, address: int) -> Mapping:
        for mapping in self._mappings:
            if mapping.base <= address < mapping.base + mapping.size_bytes:
                return mapping
        raise BusFault(address, "no device decodes this address")

    def read(self, address: int, size: int) -> int:
        """Read ``size`` bytes at ``address`` (a ``BusFault`` if nothing answers)."""
        mapping = self._find(address)
        return mapping.device.read(address - mapping.base, size)

    def write(self, address: int, size: int, value: int) -> None:
        """Write ``size`` bytes at ``address`` (a ``BusFault`` if nothing answers)."""
        mapping = self._find(address)
        mapping.device.write(address - mapping.base, size, value)
