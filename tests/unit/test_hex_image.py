"""Image: coalescing, overlap detection, read/slice/fill/merge, digest, wipe, repr."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hex_generator import HexError, Image, OverlapError, Segment, StartAddress

BACKING = bytes((i * 37 + 11) % 251 for i in range(400))


def image_of(*runs: tuple[int, bytes]) -> Image:
    image = Image()
    for address, data in runs:
        image.add(address, data)
    return image


def test_adjacent_runs_coalesce_in_any_order() -> None:
    image = image_of((0x20, b"\x03\x04"), (0x10, b"\x01"), (0x11, bytes(15)), (0x22, b"\x05"))
    assert image.ranges() == [(0x10, 0x23)]
    assert image.read(0x20, 3) == b"\x03\x04\x05"


def test_add_bridging_two_segments_merges_them() -> None:
    image = image_of((0, b"ab"), (4, b"ef"))
    image.add(2, b"cd")
    assert image.ranges() == [(0, 6)]
    assert image.read(0, 6) == b"abcdef"


def test_add_in_front_of_segment_keeps_its_bytes() -> None:
    image = image_of((10, b"xyz"))
    image.add(7, b"abc")
    assert image.read(7, 6) == b"abcxyz"
    assert [s.start for s in image.segments()] == [7]


def test_identical_overlap_is_accepted() -> None:
    image = image_of((0x100, b"hello world"))
    image.add(0x0FE, b"\x00\x00hello")
    assert image.ranges() == [(0x0FE, 0x10B)]
    assert image.read(0x0FE, 2) == b"\x00\x00"


def test_overlap_with_different_bytes_names_both_ranges() -> None:
    image = image_of((0x08000000, b"\x01" * 16))
    with pytest.raises(OverlapError) as info:
        image.add(0x08000008, b"\x02" * 16)
    assert info.value.first == (0x08000000, 0x08000010)
    assert info.value.second == (0x08000008, 0x08000018)
    assert "0x08000000" in str(info.value)
    assert "0x08000018" in str(info.value)


def test_read_gap_raises_unless_filled() -> None:
    image = image_of((0, b"\x01"), (2, b"\x03"))
    with pytest.raises(HexError, match="gap"):
        image.read(0, 3)
    assert image.read(0, 4, fill_byte=0xEE) == b"\x01\xee\x03\xee"


def test_slice_filled_and_merge_return_new_images() -> None:
    image = image_of((0, b"abcd"), (8, b"ijkl"))
    image.start_address = StartAddress.linear(0x9)
    part = image.slice(2, 10)
    assert part.ranges() == [(2, 4), (8, 10)]
    assert part.read(8, 2) == b"ij"
    full = image.filled(0, 16, 0xFF)
    assert full.ranges() == [(0, 16)]
    assert full.read(4, 4) == b"\xff" * 4
    assert image.ranges() == [(0, 4), (8, 12)]
    merged = image.merge(image_of((4, b"efgh")))
    assert merged.read(0, 12) == b"abcdefghijkl"
    assert merged.start_address == StartAddress.linear(0x9)
    with pytest.raises(OverlapError):
        image.merge(image_of((3, b"X")))


def test_sha256_counts_gaps_as_fill() -> None:
    image = image_of((0x10, b"\x01\x02"))
    expected = hashlib.sha256(b"\xaa" * 0x10 + b"\x01\x02" + b"\xaa" * 0x0E).digest()
    assert image.sha256(0, 0x20, 0xAA) == expected
    assert image.sha256(0x11, 0x12) == hashlib.sha256(b"\x02").digest()


def test_sizes_and_bounds() -> None:
    image = image_of((0x100, bytes(4)), (0x200, bytes(6)))
    assert (image.min_address, image.max_address) == (0x100, 0x206)
    assert image.size_bytes == len(image) == 10
    assert (Image().min_address, Image().max_address, len(Image())) == (0, 0, 0)


def test_equality_covers_data_and_start_address() -> None:
    a = image_of((0, b"abc"))
    b = image_of((0, b"ab"), (2, b"c"))
    assert a == b
    b.start_address = StartAddress.segment(0x1000, 0x0010)
    assert a != b
    assert image_of((0, b"abd")) != a


def test_wipe_zeroises_buffers_and_empties() -> None:
    image = image_of((0, b"secret-key-bytes"))
    buffer = next(image.segments()).data
    image.wipe()
    assert buffer == bytes(16)
    assert image.ranges() == []
    assert len(image) == 0


def test_repr_shows_ranges_never_bytes() -> None:
    image = image_of((0x08000000, b"SECRETSECRET"))
    text = repr(image) + repr(next(image.segments()))
    assert "0x08000000" in text
    assert "SECRET" not in text
    assert "5345" not in text


def test_start_address_entry() -> None:
    assert StartAddress.segment(0x3000, 0xE000).entry == 0x3E000
    assert StartAddress.linear(0x08000139).entry == 0x08000139


def test_segment_end() -> None:
    assert Segment(0x10, bytearray(5)).end == 0x15


def test_addresses_past_4_gib_are_refused() -> None:
    with pytest.raises(HexError, match="2\\*\\*32"):
        Image().add(0xFFFFFFFF, b"\x00\x00")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.binary(min_size=1, max_size=40)), max_size=12))
def test_add_matches_a_byte_map_model(runs: list[tuple[int, bytes]]) -> None:
    image = Image()
    model: dict[int, int] = {}
    for address, data in runs:
        data = BACKING[address : address + len(data)]  # consistent bytes: overlaps are identical
        image.add(address, data)
        model.update((address + i, b) for i, b in enumerate(data))
    assert image.size_bytes == len(model)
    for start, end in image.ranges():
        assert image.read(start, end - start) == bytes(model[a] for a in range(start, end))
        assert start - 1 not in model
        assert end not in model
    starts = [s for s, _ in image.ranges()]
    assert starts == sorted(starts)
