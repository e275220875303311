"""Intel HEX, S-record and binary readers/writers: records, addressing, malformed inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hex_generator import (
    AddressOverflow,
    BadChecksum,
    BadHexDigit,
    BadRecordStart,
    DataAfterEof,
    HexError,
    HexFormatError,
    Image,
    LengthMismatch,
    MissingEof,
    OddDigitCount,
    StartAddress,
    UnknownRecordType,
    emit_binary,
    emit_ihex,
    emit_srec,
    load,
    parse_binary,
    parse_ihex,
    parse_srec,
    save,
)

DATA = Path(__file__).parents[1] / "data" / "hex"

MALFORMED = [
    ("bad_checksum.hex", BadChecksum, 3, "expected 0x68"),
    ("odd_digit_count.hex", OddDigitCount, 3, "odd number"),
    ("bad_hex_digit.hex", BadHexDigit, 3, "'G' at column 10"),
    ("unknown_record_type.hex", UnknownRecordType, 3, "type 0x06"),
    ("length_mismatch.hex", LengthMismatch, 3, "byte count 16 but 15"),
    ("missing_eof.hex", MissingEof, 3, "end-of-file"),
    ("data_after_eof.hex", DataAfterEof, 4, "line 3"),
    ("address_overflow.hex", AddressOverflow, 2, "crosses its 64 KiB segment"),
    ("bad_record_start.hex", BadRecordStart, 3, "';'"),
    ("bad_checksum.s19", BadChecksum, 3, "expected 0xEC"),
    ("length_mismatch.s19", LengthMismatch, 3, "byte count 11 but 10"),
    ("unknown_record_type.s19", UnknownRecordType, 3, "S4"),
    ("data_after_eof.s19", DataAfterEof, 4, "line 3"),
    ("address_overflow.s19", AddressOverflow, 2, "16-bit"),
    ("count_mismatch.s19", LengthMismatch, 3, "says 2 data records, found 1"),
]


@pytest.mark.parametrize(("name", "error", "line", "reason"), MALFORMED)
def test_each_malformation_has_its_class_file_and_line(
    name: str, error: type[HexFormatError], line: int, reason: str
) -> None:
    path = DATA / name
    with pytest.raises(error) as info:
        load(path)
    assert type(info.value) is error
    assert info.value.source == str(path)
    assert info.value.line == line
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_every_malformation_class_has_a_data_file() -> None:
    classes = {error for _, error, _, _ in MALFORMED}
    assert {c.__name__ for c in HexFormatError.__subclasses__()} == {c.__name__ for c in classes}
    assert sorted(p.name for p in DATA.iterdir()) == sorted(name for name, *_ in MALFORMED)


def record(kind: int, offset: int, payload: bytes) -> str:
    body = bytes((len(payload), offset >> 8, offset & 0xFF, kind)) + payload
    return ":" + (body + bytes((-sum(body) & 0xFF,))).hex().upper()


def test_ihex_all_record_types_and_lengths() -> None:
    text = "\n".join(
        [
            record(2, 0, b"\x10\x00"),  # ESA 0x1000 -> base 0x10000
            record(0, 0x30, b"\x02\x33\x7a"),
            record(4, 0, b"\x08\x00"),  # ELA 0x0800
            record(0, 0, b"\xab" * 255),
            record(3, 0, b"\x00\x00\x38\x00"),  # start segment CS=0x0000 IP=0x3800
            ":00000001FF",
        ]
    )
    image = parse_ihex(text, "mem.hex")
    assert image.ranges() == [(0x10030, 0x10033), (0x08000000, 0x080000FF)]
    assert image.read(0x08000000, 255) == b"\xab" * 255
    assert image.start_address == StartAddress.segment(0x0000, 0x3800)
    assert image.start_address.entry == 0x3800


def test_ihex_lowercase_crlf_blank_lines_and_no_final_newline() -> None:
    image = parse_ihex(":0100000041be\r\n\r\n:00000001ff")
    assert image.read(0, 1) == b"A"


def test_ihex_writer_record_length_and_ela_only_where_needed() -> None:
    image = Image()
    image.add(0x0800FFF0, bytes(range(32)))
    image.add(0x08020000, b"\x01\x02")
    image.start_address = StartAddress.linear(0x08000139)
    text = emit_ihex(image, record_length=8)
    lines = text.splitlines()
    ela = [line for line in lines if line[7:9] == "04"]
    assert ela == [":020000040800F2", ":020000040801F1", ":020000040802F0"]
    data = [line for line in lines if line[7:9] == "00"]
    assert {int(line[1:3], 16) for line in data} == {8, 2}
    assert lines[-2:] == [":0400000508000139B5", ":00000001FF"]
    assert parse_ihex(text) == image
    assert emit_ihex(image, record_length=255).count("\n") < text.count("\n")
    with pytest.raises(ValueError, match="record_length"):
        emit_ihex(image, record_length=256)


def test_ihex_segment_start_address_round_trips() -> None:
    image = parse_binary(b"\x01\x02", 0x3E000)
    image.start_address = StartAddress.segment(0x3000, 0xE000)
    text = emit_ihex(image)
    assert ":040000033000E000E9" in text
    assert parse_ihex(text).start_address == image.start_address


def test_srec_picks_s1_s2_s3_by_address_width() -> None:
    cases = ((0xFF00, "S1", "S9"), (0xFFFF00, "S2", "S8"), (0x08000000, "S3", "S7"))
    for address, data_kind, end_kind in cases:
        image = parse_binary(bytes(range(40)), address)
        image.start_address = StartAddress.linear(address)
        text = emit_srec(image, record_length=16)
        kinds = [line[:2] for line in text.splitlines()]
        assert kinds == ["S0", data_kind, data_kind, data_kind, "S5", end_kind]
        assert parse_srec(text) == image


def test_srec_reads_header_count_and_out_of_order_records() -> None:
    text = "S00600004844521B\nS1050010AABB85\nS1050000CCDD51\nS5030002FA\nS9030000FC\n"
    image = parse_srec(text)
    assert image.ranges() == [(0x0000, 0x0002), (0x0010, 0x0012)]
    assert image.start_address == StartAddress.linear(0)


def test_binary_with_base_and_gaps() -> None:
    image = parse_binary(b"\x01\x02", 0x08000000)
    image.add(0x08000004, b"\x05")
    assert emit_binary(image) == b"\x01\x02\xff\xff\x05"
    assert emit_binary(image, fill_byte=0) == b"\x01\x02\x00\x00\x05"


def test_load_and_save_pick_formats(tmp_path: Path) -> None:
    image = parse_binary(bytes(range(64)), 0x2000)
    for name in ("a.hex", "a.s19", "a.bin", "noext"):
        path = tmp_path / name
        save(path, image)
        loaded = load(path, base=0x2000)
        assert loaded.read(0x2000, 64) == image.read(0x2000, 64)
    assert (tmp_path / "noext").read_text().startswith(":")
    assert (tmp_path / "a.s19").read_text().startswith("S0")


def test_load_refuses_non_ascii_text(tmp_path: Path) -> None:
    path = tmp_path / "bad.hex"
    path.write_bytes(b":00000001FF\n\xe9\n")
    with pytest.raises(HexError, match="offset 12"):
        load(path)


def test_linear_record_may_cross_64k_but_not_4g() -> None:
    # What bincopy writes: one record from 0xFFFC over the 64 KiB line, read as linear.
    image = parse_ihex(":05FFFC00313233343501\n:00000001FF\n")
    assert image.ranges() == [(0xFFFC, 0x10001)]
    text = "\n".join([record(4, 0, b"\xff\xff"), record(0, 0xFFFC, bytes(8)), ":00000001FF"])
    with pytest.raises(AddressOverflow, match="past 0xFFFFFFFF") as info:
        parse_ihex(text, "top.hex")
    assert (info.value.source, info.value.line) == ("top.hex", 2)
