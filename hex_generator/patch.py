"""Patch layouts (pure data) and patch(): write device ID, key and checksum into a template."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from hex_generator.checksums import ChecksumAlgorithm, checksum_bytes
from hex_generator.errors import HexError, ZoneError
from hex_generator.image import Image


class ZoneEncoding(StrEnum):
    """How a value is laid out in a zone; `raw` stores bytes as given (IDs big-endian)."""

    u32le = "u32le"
    u32be = "u32be"
    u64le = "u64le"
    u64be = "u64be"
    raw = "raw"


_INT_WIDTH = {
    ZoneEncoding.u32le: 4,
    ZoneEncoding.u32be: 4,
    ZoneEncoding.u64le: 8,
    ZoneEncoding.u64be: 8,
}


def _span(start: int, end: int) -> str:
    return f"[0x{start:08X}, 0x{end:08X})"


@dataclass(frozen=True, slots=True)
class Zone:
    """A placeholder-filled area of a template that patch() writes."""

    name: str
    address: int
    size_bytes: int
    encoding: ZoneEncoding
    placeholder: int = 0xFF

    def __post_init__(self) -> None:
        width = _INT_WIDTH.get(self.encoding)
        if self.size_bytes <= 0 or (width is not None and width != self.size_bytes):
            raise ValueError(
                f"zone {self.name!r}: {self.encoding} cannot be {self.size_bytes} bytes"
            )
        if not 0 <= self.placeholder <= 0xFF or self.address < 0:
            raise ValueError(f"zone {self.name!r}: bad placeholder or address")

    @property
    def end(self) -> int:
        """One past the zone's last byte."""
        return self.address + self.size_bytes


@dataclass(frozen=True, slots=True)
class ChecksumSpec:
    """Checksum over [start, end) stored at `location` (outside that range)."""

    algorithm: ChecksumAlgorithm
    start: int
    end: int
    location: int
    size_bytes: int
    byteorder: Literal["little", "big"] = "little"

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"checksum range {_span(self.start, self.end)} is empty")
        if self.location < self.end and self.location + self.size_bytes > self.start:
            raise ValueError(f"checksum location 0x{self.location:08X} lies inside its range")
        if self.algorithm is ChecksumAlgorithm.crc32_stm32 and (self.end - self.start) % 4:
            raise ValueError("crc32_stm32 needs a range of whole 32-bit words")
        checksum_bytes(self.algorithm, b"\0" * 4, self.size_bytes, self.byteorder)  # size check

    @property
    def location_end(self) -> int:
        """One past the checksum's last byte."""
        return self.location + self.size_bytes


@dataclass(frozen=True, slots=True)
class PatchLayout:
    """Where patch() writes: ID and key zones, optional checksum, the programmed range."""

    id_zone: Zone
    key_zone: Zone
    checksum: ChecksumSpec | None
    image_start: int
    image_end: int
    fill_byte: int = 0xFF

    def __post_init__(self) -> None:
        areas = [(z.name, z.address, z.end) for z in (self.id_zone, self.key_zone)]
        if self.checksum is not None:
            c = self.checksum
            areas.append(("checksum", c.location, c.location_end))
            areas.append(("checksum range", c.start, c.end))
        for name, start, end in areas:
            if start < self.image_start or end > self.image_end:
                raise ValueError(f"{name} {_span(start, end)} is outside the image range")
        for i, (name, start, end) in enumerate(areas[:3]):
            for other, o_start, o_end in areas[i + 1 : 3]:
                if start < o_end and o_start < end:
                    raise ValueError(f"{name} and {other} overlap")


def patch(template: Image, layout: PatchLayout, device_id: int, key: bytes | bytearray) -> Image:
    """Return the image to program: template + ID + key + checksum over [image_start, image_end).

    Gaps are filled with `layout.fill_byte`. Pure and deterministic; the result holds the key,
    so the caller wipes it (`Image.wipe()`) when done.

    Raises:
        ZoneError: a zone is outside the template, not blank, or cannot hold the value.
        HexError: the template holds data outside [image_start, image_end).
    """
    start, end = layout.image_start, layout.image_end
    if len(template) and (template.min_address < start or template.max_address > end):
        raise HexError(
            f"template {template!r} has data outside the image range {_span(start, end)}"
        )
    id_bytes = encode_device_id(device_id, layout.id_zone)
    key_zone = layout.key_zone
    if len(key) != key_zone.size_bytes:
        raise ZoneError(key_zone.name, f"key is {len(key)} bytes, zone holds {key_zone.size_bytes}")
    for zone in (layout.id_zone, key_zone):
        _check_template_zone(template, zone)
    spec = layout.checksum
    if spec is not None:  # checked before the key enters any buffer
        slot = template.read(spec.location, spec.size_bytes, layout.fill_byte)
        if slot.count(layout.fill_byte) != len(slot):
            raise ZoneError("checksum", f"{_span(spec.location, spec.location_end)} is not blank")
    buf = template.read(start, end - start, layout.fill_byte)
    buf[layout.id_zone.address - start : layout.id_zone.end - start] = id_bytes
    buf[key_zone.address - start : key_zone.end - start] = key
    if spec is not None:
        region = memoryview(buf)[spec.start - start : spec.end - start]
        value = checksum_bytes(spec.algorithm, region, spec.size_bytes, spec.byteorder)
        region.release()
        buf[spec.location - start : spec.location_end - start] = value
    image = Image.from_runs([(start, buf)])
    image.start_address = template.start_address
    return image


def _check_template_zone(template: Image, zone: Zone) -> None:
    try:
        data = template.read(zone.address, zone.size_bytes)
    except HexError:
        raise ZoneError(
            zone.name, f"{_span(zone.address, zone.end)} is not inside the template"
        ) from None
    if not is_zone_blank(data, zone):
        raise ZoneError(zone.name, f"does not hold placeholder 0x{zone.placeholder:02X}")


def encode_device_id(device_id: int, zone: Zone) -> bytes:
    """Return `device_id` encoded for `zone` (raw: big-endian over the zone's size).

    Raises:
        ZoneError: the value is negative or does not fit.
    """
    width = zone.size_bytes
    if not 0 <= device_id < 1 << (8 * width):
        raise ZoneError(zone.name, f"device ID {device_id} does not fit in {width} bytes")
    little = zone.encoding in (ZoneEncoding.u32le, ZoneEncoding.u64le)
    return device_id.to_bytes(width, "little" if little else "big")


def decode_device_id(data: bytes | bytearray, zone: Zone) -> int:
    """Return the device ID stored in `data`, the zone's bytes as read back."""
    if len(data) != zone.size_bytes:
        raise ValueError(f"zone {zone.name!r} is {zone.size_bytes} bytes, got {len(data)}")
    little = zone.encoding in (ZoneEncoding.u32le, ZoneEncoding.u64le)
    return int.from_bytes(data, "little" if little else "big")


def is_zone_blank(data: bytes | bytearray, zone: Zone) -> bool:
    """Return True when `data` (the zone's bytes) holds only the zone's placeholder."""
    return len(data) == zone.size_bytes and data.count(zone.placeholder) == len(data)
