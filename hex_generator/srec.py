"""Motorola S-record reader and writer (S0-S9; S1/S2/S3 chosen by address width)."""

from __future__ import annotations

from collections.abc import Iterator

from hex_generator import errors
from hex_generator.image import Image, StartAddress
from hex_generator.lines import check_hex, iter_lines
from hex_generator.records import encode_one, encode_records, join_pieces

# record type -> address bytes; data types 1-3, count 5-6, termination 7-9 (S0 header: 2)
_ADDRESS_BYTES = {0: 2, 1: 2, 2: 3, 3: 4, 5: 2, 6: 3, 7: 4, 8: 3, 9: 2}


def parse_srec(text: str, source: str = "<string>") -> Image:
    """Parse S-record text into an image; the S7/S8/S9 address becomes the start address.

    Raises:
        HexFormatError: the subclass naming the malformation, with `source` and line.
        OverlapError: two records disagree on some byte.
    """
    runs: list[tuple[int, bytearray]] = []
    run = bytearray()
    run_start = run_end = -1
    start: StartAddress | None = None
    end_line = 0
    data_records = 0
    fromhex = bytes.fromhex
    for number, line in iter_lines(text):
        if end_line:
            raise errors.DataAfterEof(
                source, number, f"record after the termination record of line {end_line}"
            )
        if line[0] not in "Ss" or len(line) < 2:
            raise errors.BadRecordStart(
                source, number, f"expected 'S<type>' but found {line[:2]!r}"
            )
        kind_char = line[1]
        if kind_char not in "0123456789":
            raise errors.UnknownRecordType(source, number, f"unknown record type S{kind_char}")
        kind = ord(kind_char) - 48
        if kind == 4:
            raise errors.UnknownRecordType(source, number, "record type S4 is reserved")
        try:
            rec = fromhex(line[2:])
        except ValueError:
            check_hex(line[2:], source, number, 3)
            raise
        size = len(rec)
        width = _ADDRESS_BYTES[kind]
        if size < width + 2 or rec[0] != size - 1:
            raise errors.LengthMismatch(
                source,
                number,
                f"byte count {rec[0] if size else 0} but {max(size - 1, 0)} bytes follow",
            )
        if sum(rec) & 0xFF != 0xFF:
            expected = ~sum(rec[:-1]) & 0xFF
            raise errors.BadChecksum(
                source, number, f"checksum 0x{rec[-1]:02X}, expected 0x{expected:02X}"
            )
        address = int.from_bytes(rec[1 : 1 + width], "big")
        if 1 <= kind <= 3:
            data_records += 1
            if address == run_end:
                run += rec[1 + width : -1]
                run_end += size - width - 2
            else:
                if run:
                    runs.append((run_start, run))
                run = bytearray(rec[1 + width : -1])
                run_start, run_end = address, address + len(run)
            if run_end > 1 << (8 * width):
                raise errors.AddressOverflow(
                    source,
                    number,
                    f"data at 0x{address:0{2 * width}X} runs past {8 * width}-bit addresses",
                )
        elif kind in (5, 6):
            if size != width + 2 or address != data_records:
                raise errors.LengthMismatch(
                    source,
                    number,
                    f"count record says {address} data records, found {data_records}",
                )
        elif kind >= 7:
            if size != width + 2:
                raise errors.LengthMismatch(source, number, f"S{kind} record carries data bytes")
            start = StartAddress.linear(address)
            end_line = number
    if run:
        runs.append((run_start, run))
    image = Image.from_runs(runs)
    image.start_address = start
    return image


def emit_srec(image: Image, record_length: int = 32) -> str:
    """Return S-record text: S0, data as S1/S2/S3 by address width, S5/S6 count, S9/S8/S7."""
    return join_pieces(iter_srec(image, record_length))


def iter_srec(image: Image, record_length: int = 32) -> Iterator[str]:
    """Yield S-record text in pieces of bounded size (for streaming to a file)."""
    top = max(image.max_address - 1, _entry(image))
    data_kind = 1 if top <= 0xFFFF else 2 if top <= 0xFFFFFF else 3
    width = data_kind + 1
    if not 1 <= record_length <= 254 - width:
        raise ValueError(
            f"record_length must be 1..{254 - width} for S{data_kind}, not {record_length}"
        )
    yield _record(0, 0, 2, b"")
    count = 0
    mark = f"S{data_kind}"
    step = 0x1000 * record_length
    for seg in image.segments():
        view = memoryview(seg.data)
        for offset in range(0, len(view), step):
            piece = view[offset : offset + step]
            yield encode_records(
                mark, seg.start + offset, width, piece, record_length,
                count_extra=width + 1, kind=None, ones_complement=True,
            )  # fmt: skip
            count += -(-len(piece) // record_length)
    if count <= 0xFFFF:
        yield _record(5, count, 2, b"")
    elif count <= 0xFFFFFF:
        yield _record(6, count, 3, b"")
    yield _record(10 - data_kind, _entry(image), width, b"")


def _entry(image: Image) -> int:
    return image.start_address.entry if image.start_address is not None else 0


def _record(kind: int, address: int, width: int, payload: bytes) -> str:
    return encode_one(
        f"S{kind}", address, width, payload, count_extra=width + 1, kind=None, ones_complement=True
    )
