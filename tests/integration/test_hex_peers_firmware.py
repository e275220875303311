"""Real firmware in ../shared/firmware reads exactly as bincopy reads it and round-trips."""

from __future__ import annotations

from pathlib import Path

import bincopy
import pytest

from hex_generator import (
    Image,
    StartAddress,
    UnknownRecordType,
    emit_ihex,
    emit_srec,
    load,
    parse_ihex,
    parse_srec,
)

FIRMWARE = Path(__file__).parents[2].parent / "shared" / "firmware"
UNIVERSAL = "microbit_universal_hex_1.1.1_2.1.2.hex"
pytestmark = pytest.mark.skipif(
    not FIRMWARE.is_dir(), reason=f"real firmware folder {FIRMWARE} is absent (see its SOURCES.md)"
)


def real_images() -> list[str]:
    if not FIRMWARE.is_dir():
        return []
    return sorted(
        p.name for p in FIRMWARE.iterdir() if p.suffix in (".hex", ".s19") and p.name != UNIVERSAL
    )


def peer_segments(path: Path) -> list[tuple[int, bytes]]:
    peer = bincopy.BinFile(str(path))
    return [(s.minimum_address, bytes(s.data)) for s in peer.segments]


def our_segments(image: Image) -> list[tuple[int, bytes]]:
    return [(s.start, bytes(s.data)) for s in image.segments()]


def test_all_nine_images_are_present() -> None:
    assert len(real_images()) == 9


@pytest.mark.parametrize("name", real_images())
def test_reads_exactly_the_bytes_bincopy_reads(name: str) -> None:
    assert our_segments(load(FIRMWARE / name)) == peer_segments(FIRMWARE / name)


@pytest.mark.parametrize("name", real_images())
@pytest.mark.parametrize("record_length", [16, 64, 255])
def test_round_trips_through_our_writers(name: str, record_length: int) -> None:
    image = load(FIRMWARE / name)
    assert parse_ihex(emit_ihex(image, record_length)) == image
    via_srec = parse_srec(emit_srec(image, min(record_length, 250)))
    assert our_segments(via_srec) == our_segments(image)
    entry = image.start_address.entry if image.start_address else 0
    assert via_srec.start_address == StartAddress.linear(entry)


def test_original_text_is_reproduced_where_records_are_aligned() -> None:
    path = FIRMWARE / "stm32f103_bluepill_baremetal.hex"
    assert emit_ihex(load(path)) == path.read_text()


@pytest.mark.parametrize(
    ("name", "cs", "ip", "entry"),
    [
        ("nrf52833_microbit_v2_micropython_2.1.2.hex", 0x2000, 0x9C51, 0x00029C51),
        ("atmega2560_stk500v2_bootloader.hex", 0x3000, 0xE000, 0x0003E000),
    ],
)
def test_start_segment_address_keeps_cs_ip_and_real_mode_entry(
    name: str, cs: int, ip: int, entry: int
) -> None:
    start = load(FIRMWARE / name).start_address
    assert start == StartAddress.segment(cs, ip)
    assert start.entry == entry


def test_linear_start_addresses() -> None:
    assert load(FIRMWARE / "stm32f103_bluepill_baremetal.hex").start_address == StartAddress.linear(
        0x08000139
    )
    assert load(
        FIRMWARE / "stm32f103_primer2_gnss_tracker.s19"
    ).start_address == StartAddress.linear(0x08000000)


def test_universal_hex_is_refused_naming_line_and_record_type() -> None:
    path = FIRMWARE / UNIVERSAL
    with pytest.raises(UnknownRecordType) as info:
        load(path)
    assert info.value.line == 2
    assert info.value.source == str(path)
    assert "record type 0x0A" in str(info.value)
    assert "Universal Hex" in str(info.value)
    assert str(info.value).startswith(f"{path}:2: ")
