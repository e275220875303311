"""Resolved, validated hardware profile: frozen value objects built once from the schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hex_generator import ChecksumSpec, PatchLayout, Zone


@dataclass(frozen=True, slots=True)
class MemoryRegion:
    """A half-open memory range [base, base + size_bytes)."""

    base: int
    size_bytes: int

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.base + self.size_bytes


@dataclass(frozen=True, slots=True)
class FlashGeometry:
    """Flash range and its erase units as absolute (start, size) sectors."""

    base: int
    size_bytes: int
    sectors: tuple[tuple[int, int], ...]
    page_size_bytes: int | None

    @property
    def end(self) -> int:
        """One past the last flash byte."""
        return self.base + self.size_bytes

    def contains(self, start: int, end: int) -> bool:
        """Return True when [start, end) lies inside flash."""
        return self.base <= start <= end <= self.end

    def erase_ranges(self, start: int, end: int) -> list[tuple[int, int]]:
        """Return the (start, size) sectors to erase so that [start, end) is blank.

        Raises:
            ValueError: the range is not inside flash.
        """
        if not self.contains(start, end):
            raise ValueError(f"[0x{start:08X}, 0x{end:08X}) is outside flash")
        return [(s, n) for s, n in self.sectors if s < end and start < s + n]


@dataclass(frozen=True, slots=True)
class SwdTransport:
    """pyOCD target name and the CMSIS pack it needs, if any."""

    pyocd_target: str
    pack: str | None


@dataclass(frozen=True, slots=True)
class PinWiring:
    """Which USB-serial modem line drives a pin, and whether asserting it drives the pin high."""

    line: Literal["rts", "dtr", "none"]
    active_high: bool


@dataclass(frozen=True, slots=True)
class SerialTransport:
    """ROM bootloader over UART (AN3155) and its BOOT0/RESET wiring."""

    protocol: Literal["an3155"]
    baud: int
    parity: Literal["even"]
    product_id: int
    boot0: PinWiring
    reset: PinWiring


@dataclass(frozen=True, slots=True)
class ReadoutProtection:
    """Readout protection level to set after programming, and how."""

    level: int
    method: Literal["stm32_option_bytes", "nrf52_approtect"]


@dataclass(frozen=True, slots=True)
class UpdateLayout:
    """Where a field-updatable device keeps its slots, boot state and event log (two pages each)."""

    slots: tuple[MemoryRegion, MemoryRegion]
    boot_state: MemoryRegion
    event_log: MemoryRegion
    page_size_bytes: int


@dataclass(frozen=True, slots=True)
class Profile:
    """One board/MCU: memory map, transports, protection and patch layout."""

    name: str
    mcu: str
    description: str
    flash: FlashGeometry
    ram: MemoryRegion
    chip_uid: MemoryRegion
    swd: SwdTransport | None
    serial: SerialTransport | None
    readout_protection: ReadoutProtection
    key_size_bytes: int
    fill_byte: int
    bootloader: MemoryRegion
    id_zone: Zone
    key_zone: Zone
    checksum: ChecksumSpec | None
    sha256: str
    update: UpdateLayout | None = None

    def patch_layout(self) -> PatchLayout:
        """Return the layout patch() needs: zones, checksum, the bootloader region to program."""
        return PatchLayout(
            id_zone=self.id_zone,
            key_zone=self.key_zone,
            checksum=self.checksum,
            image_start=self.bootloader.base,
            image_end=self.bootloader.end,
            fill_byte=self.fill_byte,
        )
