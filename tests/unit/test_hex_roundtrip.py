"""Property-based round trips: Intel HEX ↔ S-record ↔ binary over random sparse images."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hex_generator import (
    Image,
    StartAddress,
    emit_binary,
    emit_ihex,
    emit_srec,
    parse_binary,
    parse_ihex,
    parse_srec,
)


@st.composite
def sparse_images(draw: st.DrawFn, limit: int = 1 << 32) -> Image:
    """Random non-overlapping runs anywhere in `limit`, some crossing 64 KiB boundaries."""
    image = Image()
    address = draw(st.sampled_from([0, 0xFFF0, 0x0800FF00, 0xFFFF00, limit - 0x1000]))
    address = min(address, limit - 1)
    for _ in range(draw(st.integers(1, 5))):
        data = draw(st.binary(min_size=1, max_size=300))
        if address + len(data) > limit:
            break
        image.add(address, data)
        address += len(data) + draw(st.integers(1, 0x30000))
    kind = draw(st.sampled_from(["none", "linear", "segment"]))
    if kind == "linear":
        image.start_address = StartAddress.linear(draw(st.integers(0, limit - 1)))
    elif kind == "segment":
        image.start_address = StartAddress.segment(
            draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF))
        )
    return image


@settings(max_examples=150, deadline=None)
@given(sparse_images(), st.integers(1, 255))
def test_ihex_round_trip(image: Image, record_length: int) -> None:
    assert parse_ihex(emit_ihex(image, record_length)) == image


@settings(max_examples=150, deadline=None)
@given(sparse_images(), st.integers(1, 250))
def test_srec_round_trip_keeps_data_and_entry(image: Image, record_length: int) -> None:
    back = parse_srec(emit_srec(image, record_length))
    assert back.ranges() == image.ranges()
    assert all(a.data == b.data for a, b in zip(back.segments(), image.segments(), strict=True))
    entry = image.start_address.entry if image.start_address else 0
    assert back.start_address == StartAddress.linear(entry)


@settings(max_examples=100, deadline=None)
@given(sparse_images(limit=1 << 20), st.integers(0, 0xFF))
def test_ihex_srec_binary_chain(image: Image, fill_byte: int) -> None:
    image.start_address = None
    via_srec = parse_srec(emit_srec(parse_ihex(emit_ihex(image))))
    via_srec.start_address = None
    assert via_srec == image
    blob = emit_binary(via_srec, fill_byte)
    dense = parse_binary(blob, image.min_address)
    assert dense == image.filled(image.min_address, image.max_address, fill_byte)
    assert parse_ihex(emit_ihex(dense)) == dense
