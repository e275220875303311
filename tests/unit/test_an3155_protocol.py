"""Property tests of the pure AN3155 framing: every command's frames encode and decode back."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.errors import BootloaderNack, GarbledReply
from provisioner.flash.serial_rom import protocol as p

block = st.binary(min_size=1, max_size=256)
addresses = st.integers(0, 0xFFFFFFFF)


@pytest.mark.parametrize("command", list(p.Command))
def test_every_command_frame_decodes_to_itself(command: p.Command) -> None:
    frame = p.command_frame(command)
    assert frame[0] ^ frame[1] == 0xFF
    assert p.decode_command_frame(frame) == command


@given(st.integers(0, 255), st.integers(0, 255))
def test_a_wrong_complement_is_refused(code: int, other: int) -> None:
    expected = code if other == code ^ 0xFF else None
    assert p.decode_command_frame(bytes((code, other))) == expected


@given(addresses)
def test_address_round_trip_and_checksum(address: int) -> None:
    frame = p.address_frame(address)
    assert frame[:4] == address.to_bytes(4, "big")
    assert frame[4] == frame[0] ^ frame[1] ^ frame[2] ^ frame[3]
    assert p.decode_address_frame(frame) == address


@given(addresses, st.integers(0, 4), st.integers(1, 255))
def test_a_corrupt_address_frame_is_detected(address: int, index: int, flip: int) -> None:
    frame = bytearray(p.address_frame(address))
    frame[index] ^= flip
    assert p.decode_address_frame(bytes(frame)) is None


@given(st.integers(1, 256))
def test_read_length_round_trip(size: int) -> None:
    frame = p.read_length_frame(size)
    assert frame == bytes((size - 1, (size - 1) ^ 0xFF))
    assert p.decode_read_length_frame(frame) == size


@pytest.mark.parametrize("size", [0, 257])
def test_block_sizes_outside_1_to_256_are_refused(size: int) -> None:
    with pytest.raises(ValueError):
        p.read_length_frame(size)
    with pytest.raises(ValueError):
        p.data_frame(b"\x00" * size)


@given(block)
def test_write_data_round_trip(data: bytes) -> None:
    frame = p.data_frame(data)
    assert frame[0] == len(data) - 1
    assert len(frame) == len(data) + 2
    assert p.xor(frame) == 0
    assert p.decode_data_frame(frame) == data


@given(block, st.data())
def test_a_corrupt_data_frame_is_detected(data: bytes, draw: st.DataObject) -> None:
    frame = bytearray(p.data_frame(data))
    index = draw.draw(st.integers(1, len(frame) - 1))
    frame[index] ^= draw.draw(st.integers(1, 255))
    assert p.decode_data_frame(bytes(frame)) is None


@given(st.lists(st.integers(0, 255), min_size=1, max_size=255))
def test_legacy_erase_pages_frame(pages: list[int]) -> None:
    frame = p.legacy_erase_frame(pages)
    assert frame[0] == len(pages) - 1
    assert list(frame[1:-1]) == pages
    assert p.xor(frame) == 0
    assert p.sector_list_frame(pages) == frame  # Write Protect uses the same shape


@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=300))
def test_extended_erase_pages_frame(pages: list[int]) -> None:
    frame = p.extended_erase_frame(pages)
    assert int.from_bytes(frame[:2], "big") == len(pages) - 1
    decoded = [int.from_bytes(frame[i:i + 2], "big") for i in range(2, len(frame) - 1, 2)]
    assert decoded == pages
    assert p.xor(frame) == 0


def test_mass_erase_frames() -> None:
    assert p.legacy_erase_frame(None) == b"\xff\x00"
    assert p.extended_erase_frame(None) == b"\xff\xff\x00"


@given(st.integers(0, 255), st.frozensets(st.integers(0, 255), min_size=1, max_size=40))
def test_get_reply_round_trip(version: int, commands: frozenset[int]) -> None:
    info = p.BootloaderInfo(version, commands)
    assert p.decode_get_reply(p.encode_get_reply(info)) == info


@given(st.integers(0, 0xFFFF))
def test_get_id_reply_round_trip(product_id: int) -> None:
    assert p.decode_get_id_reply(p.encode_get_id_reply(product_id)) == product_id


def test_erase_command_is_chosen_from_the_get_answer() -> None:
    assert p.BootloaderInfo(0x31, frozenset({0x00, 0x44})).erase_command is p.Command.extended_erase
    assert p.BootloaderInfo(0x22, frozenset({0x00, 0x43})).erase_command is p.Command.erase
    with pytest.raises(GarbledReply):
        _ = p.BootloaderInfo(0x22, frozenset({0x00})).erase_command


def test_truncated_replies_are_garbled() -> None:
    with pytest.raises(GarbledReply):
        p.decode_get_reply(b"\x05\x22\x00")
    with pytest.raises(GarbledReply):
        p.decode_get_id_reply(b"\x01\x04")


def test_check_ack_names_command_phase_and_address() -> None:
    p.check_ack(b"\x79", "write", "after the data")
    with pytest.raises(BootloaderNack) as nack:
        p.check_ack(b"\x1f", "write", "after the data", 0x08000400)
    assert (nack.value.command, nack.value.phase, nack.value.address) == (
        "write", "after the data", 0x08000400)
    assert "0x08000400" in str(nack.value)
    with pytest.raises(GarbledReply) as garbled:
        p.check_ack(b"\xa5", "read", "after the address")
    assert garbled.value.got == b"\xa5"


@given(addresses.filter(lambda a: a < 0xFFFF0000), st.integers(1, 5000))
def test_blocks_cover_the_range_without_crossing_256_byte_boundaries(start: int, size: int
                                                                    ) -> None:
    parts = p.blocks(start, size)
    assert parts[0][0] == start
    assert sum(n for _, n in parts) == size
    for (a, n), (b, _) in itertools.pairwise(parts):
        assert a + n == b
    assert all(1 <= n <= 256 and a // 256 == (a + n - 1) // 256 for a, n in parts)
