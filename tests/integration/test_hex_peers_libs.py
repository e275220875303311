"""Peer compatibility: intelhex and bincopy read what we write; we read what they write."""

from __future__ import annotations

import io

import bincopy
from hypothesis import given, settings
from hypothesis import strategies as st
from intelhex import IntelHex

from hex_generator import Image, StartAddress, emit_ihex, emit_srec, parse_ihex, parse_srec


@st.composite
def images(draw: st.DrawFn) -> Image:
    image = Image()
    address = draw(st.sampled_from([0, 0xFFF8, 0x0800FFF0, 0x10000000]))
    for _ in range(draw(st.integers(1, 4))):
        data = draw(st.binary(min_size=1, max_size=200))
        image.add(address, data)
        address += len(data) + draw(st.integers(1, 0x20000))
    if draw(st.booleans()):
        image.start_address = StartAddress.linear(draw(st.integers(0, 0xFFFFFFFF)))
    return image


def segments(image: Image) -> list[tuple[int, bytes]]:
    return [(s.start, bytes(s.data)) for s in image.segments()]


def intelhex_segments(peer: IntelHex) -> list[tuple[int, bytes]]:
    return [(start, peer.tobinstr(start, end - 1)) for start, end in peer.segments()]


def bincopy_segments(peer: bincopy.BinFile) -> list[tuple[int, bytes]]:
    return [(s.minimum_address, bytes(s.data)) for s in peer.segments]


@settings(max_examples=60, deadline=None)
@given(images(), st.sampled_from([8, 16, 32, 64, 255]))
def test_peers_read_our_intel_hex(image: Image, record_length: int) -> None:
    text = emit_ihex(image, record_length)
    ih = IntelHex(io.StringIO(text))
    assert intelhex_segments(ih) == segments(image)
    bf = bincopy.BinFile()
    bf.add_ihex(text)
    assert bincopy_segments(bf) == segments(image)
    if image.start_address is not None:
        assert ih.start_addr == {"EIP": image.start_address.eip}
        assert bf.execution_start_address == image.start_address.eip


@settings(max_examples=60, deadline=None)
@given(images())
def test_bincopy_reads_our_srec(image: Image) -> None:
    bf = bincopy.BinFile()
    bf.add_srec(emit_srec(image))
    assert bincopy_segments(bf) == segments(image)


@settings(max_examples=60, deadline=None)
@given(images())
def test_we_read_what_peers_write(image: Image) -> None:
    ih = IntelHex()
    for seg in image.segments():
        ih.puts(seg.start, bytes(seg.data))
    if image.start_address is not None:
        ih.start_addr = {"EIP": image.start_address.eip}
    out = io.StringIO()
    ih.write_hex_file(out)
    assert parse_ihex(out.getvalue()) == image

    bf = bincopy.BinFile()
    for seg in image.segments():
        bf.add_binary(bytes(seg.data), seg.start)
    if image.start_address is not None:
        bf.execution_start_address = image.start_address.eip
    for length in (16, 32):
        assert parse_ihex(bf.as_ihex(length)) == image
    back = parse_srec(bf.as_srec(32, 32))
    assert segments(back) == segments(image)


def test_we_read_intelhex_segment_start_address() -> None:
    ih = IntelHex()
    ih.puts(0x3E000, b"\x0c\x94")
    ih.start_addr = {"CS": 0x3000, "IP": 0xE000}
    out = io.StringIO()
    ih.write_hex_file(out)
    image = parse_ihex(out.getvalue())
    assert image.start_address == StartAddress.segment(0x3000, 0xE000)
    assert image.start_address.entry == 0x3E000
