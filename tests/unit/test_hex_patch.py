"""patch(): zones written with their encodings, checksum stored, refusals, determinism."""

from __future__ import annotations

import pytest

from hex_generator import (
    ChecksumAlgorithm,
    ChecksumSpec,
    HexError,
    Image,
    PatchLayout,
    StartAddress,
    Zone,
    ZoneEncoding,
    ZoneError,
    decode_device_id,
    encode_device_id,
    is_zone_blank,
    patch,
)
from hex_generator.checksums import checksum_bytes

BASE = 0x08000000
KEY = bytes(range(0xA0, 0xB0))


def layout(
    algorithm: ChecksumAlgorithm = ChecksumAlgorithm.crc32_stm32,
    id_encoding: ZoneEncoding = ZoneEncoding.u32le,
) -> PatchLayout:
    id_size = 8 if id_encoding in (ZoneEncoding.u64le, ZoneEncoding.u64be) else 4
    size = {"crc16_ccitt_false": 2, "sha256": 16}.get(algorithm, 4)
    return PatchLayout(
        id_zone=Zone("device_id", BASE + 0x3C0, id_size, id_encoding, 0xFF),
        key_zone=Zone("key", BASE + 0x3D0, 16, ZoneEncoding.raw, 0xFF),
        checksum=ChecksumSpec(algorithm, BASE, BASE + 0x3E0, BASE + 0x3F0, size, "little"),
        image_start=BASE,
        image_end=BASE + 0x400,
    )


def template() -> Image:
    image = Image()
    image.add(BASE, bytes(range(256)) * 3)
    image.add(BASE + 0x3C0, b"\xff" * 0x20)
    image.start_address = StartAddress.linear(BASE + 0x101)
    return image


@pytest.mark.parametrize("algorithm", list(ChecksumAlgorithm))
def test_patch_writes_zones_fills_gaps_and_stores_checksum(algorithm: ChecksumAlgorithm) -> None:
    spec = layout(algorithm)
    out = patch(template(), spec, 0x12345678, KEY)
    assert out.ranges() == [(BASE, BASE + 0x400)]
    assert out.read(BASE + 0x3C0, 4) == bytes.fromhex("78563412")
    assert out.read(BASE + 0x3D0, 16) == KEY
    assert out.read(BASE + 0x300, 0xC0) == b"\xff" * 0xC0
    assert out.read(BASE, 768) == bytes(range(256)) * 3
    assert out.start_address == StartAddress.linear(BASE + 0x101)
    assert spec.checksum is not None
    c = spec.checksum
    stored = out.read(c.location, c.size_bytes)
    assert stored == checksum_bytes(
        algorithm, out.read(c.start, c.end - c.start), c.size_bytes, "little"
    )


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        (ZoneEncoding.u32le, "78563412"),
        (ZoneEncoding.u32be, "12345678"),
        (ZoneEncoding.u64le, "7856341200000000"),
        (ZoneEncoding.u64be, "0000000012345678"),
    ],
)
def test_id_encodings_round_trip(encoding: ZoneEncoding, expected: str) -> None:
    spec = layout(id_encoding=encoding)
    out = patch(template(), spec, 0x12345678, KEY)
    zone = spec.id_zone
    data = out.read(zone.address, zone.size_bytes)
    assert data.hex() == expected
    assert decode_device_id(data, zone) == 0x12345678
    assert not is_zone_blank(data, zone)


def test_raw_id_zone_is_big_endian() -> None:
    zone = Zone("device_id", 0, 6, ZoneEncoding.raw)
    assert encode_device_id(0x0102, zone) == bytes.fromhex("000000000102")


def test_output_is_deterministic_and_input_untouched() -> None:
    original = template()
    first = patch(original, layout(), 7, KEY)
    second = patch(template(), layout(), 7, KEY)
    assert first == second
    assert original == template()
    assert patch(template(), layout(), 8, KEY) != first


def test_zone_outside_template_is_refused() -> None:
    image = Image()
    image.add(BASE, bytes(0x3C0))
    with pytest.raises(ZoneError) as info:
        patch(image, layout(), 1, KEY)
    assert info.value.zone == "device_id"
    assert "0x080003C0" in str(info.value)


def test_zone_not_blank_is_refused() -> None:
    image = template()
    spoiled = Image()
    spoiled.add(BASE + 0x3D4, b"\x00")
    merged = (
        image.slice(BASE, BASE + 0x3D4)
        .merge(spoiled)
        .merge(image.slice(BASE + 0x3D5, BASE + 0x400))
    )
    with pytest.raises(ZoneError, match="placeholder 0xFF") as info:
        patch(merged, layout(), 1, KEY)
    assert info.value.zone == "key"


def test_wrong_key_size_and_id_too_large_are_refused_without_key_bytes() -> None:
    with pytest.raises(ZoneError, match="key is 15 bytes") as info:
        patch(template(), layout(), 1, KEY[:15])
    assert KEY[:15].hex() not in str(info.value)
    with pytest.raises(ZoneError, match="does not fit in 4 bytes"):
        patch(template(), layout(), 1 << 32, KEY)
    with pytest.raises(ZoneError):
        patch(template(), layout(), -1, KEY)


def test_checksum_slot_must_be_blank() -> None:
    image = template()
    image.add(BASE + 0x3F0, b"\x00")
    with pytest.raises(ZoneError, match="checksum"):
        patch(image, layout(), 1, KEY)


def test_template_data_outside_image_range_is_refused() -> None:
    image = template()
    image.add(BASE + 0x400, b"\x00")
    with pytest.raises(HexError, match="outside the image range"):
        patch(image, layout(), 1, KEY)


def test_layout_validation() -> None:
    key = Zone("key", 0x10, 16, ZoneEncoding.raw)
    with pytest.raises(ValueError, match="overlap"):
        PatchLayout(Zone("device_id", 0x18, 4, ZoneEncoding.u32le), key, None, 0, 0x100)
    with pytest.raises(ValueError, match="outside"):
        PatchLayout(Zone("device_id", 0x100, 4, ZoneEncoding.u32le), key, None, 0, 0x100)
    with pytest.raises(ValueError, match="inside its range"):
        ChecksumSpec(ChecksumAlgorithm.crc32, 0, 0x100, 0xF0, 4, "little")
    with pytest.raises(ValueError, match="whole 32-bit words"):
        ChecksumSpec(ChecksumAlgorithm.crc32_stm32, 0, 0x102, 0x200, 4, "little")
    with pytest.raises(ValueError, match="cannot be 8 bytes"):
        Zone("device_id", 0, 8, ZoneEncoding.u32le)
