"""Intel HEX reader and writer (record types 00-05, records of 1-255 data bytes)."""

from __future__ import annotations

from collections.abc import Iterator
from zlib import adler32

from hex_generator import errors
from hex_generator.image import Image, StartAddress
from hex_generator.lines import check_hex, iter_chunks
from hex_generator.records import encode_one, encode_records, join_pieces

_DATA, _EOF, _ESA, _SSA, _ELA, _SLA = range(6)
_ADDRESS_LENGTH = {_ESA: 2, _SSA: 4, _ELA: 2, _SLA: 4}
_UNIVERSAL_HEX_HINT = " (micro:bit Universal Hex extension: split the file per board first)"
_RECORD_NAMES = {
    _DATA: "data",
    _EOF: "end of file",
    _ESA: "extended segment address",
    _SSA: "start segment address",
    _ELA: "extended linear address",
    _SLA: "start linear address",
}


def parse_ihex(text: str, source: str = "<string>") -> Image:
    """Parse Intel HEX text into an image; start address kept.

    Raises:
        HexFormatError: the subclass naming the malformation, with `source` and line.
        OverlapError: two records disagree on some byte.
    """
    runs: list[tuple[int, bytearray]] = []
    run = bytearray()
    run_start = run_end = -1
    base = 0
    segmented = False  # an extended segment address (02) is in force
    start: StartAddress | None = None
    eof_line = 0
    fromhex = bytes.fromhex
    number = 0
    for first, lines in iter_chunks(text):
        for number, line in enumerate(lines, first):
            if not line:
                continue
            if line[0] != ":":
                if line.isspace():
                    continue
                raise errors.BadRecordStart(source, number, f"expected ':' but found {line[:1]!r}")
            if eof_line:
                raise errors.DataAfterEof(
                    source, number, f"record after the end-of-file record of line {eof_line}"
                )
            try:
                rec = fromhex(line[1:])
            except ValueError:
                check_hex(line[1:], source, number, 2)
                raise
            size = len(rec)
            if size < 5 or rec[0] != size - 5:
                raise errors.LengthMismatch(
                    source,
                    number,
                    f"byte count {rec[0] if size else 0} but {max(size - 5, 0)} data bytes",
                )
            # adler32's low half is 1 + the byte sum while that sum stays below 65521.
            if ((adler32(rec) - 1) if size <= 256 else sum(rec)) & 0xFF:
                expected = -sum(rec[:-1]) & 0xFF
                raise errors.BadChecksum(
                    source, number, f"checksum 0x{rec[-1]:02X}, expected 0x{expected:02X}"
                )
            kind = rec[3]
            if kind == _DATA:
                offset = (rec[1] << 8) | rec[2]
                if segmented and offset + size - 5 > 0x10000:
                    # Intel's spec wraps such a record inside the segment; common readers do not.
                    raise errors.AddressOverflow(
                        source,
                        number,
                        f"record at offset 0x{offset:04X} crosses its 64 KiB segment",
                    )
                address = base + offset
                if address == run_end:
                    run += rec[4:-1]
                    run_end += size - 5
                else:
                    if run:
                        runs.append((run_start, run))
                    run = bytearray(rec[4:-1])
                    run_start, run_end = address, address + size - 5
                if run_end > 1 << 32:
                    raise errors.AddressOverflow(
                        source, number, f"data at 0x{address:08X} runs past 0xFFFFFFFF"
                    )
                continue
            if kind > _SLA:
                hint = _UNIVERSAL_HEX_HINT if 0x0A <= kind <= 0x0D else ""
                reason = f"unknown record type 0x{kind:02X}{hint}"
                raise errors.UnknownRecordType(source, number, reason)
            want = _ADDRESS_LENGTH.get(kind, 0)
            if size - 5 != want or (kind != _EOF and (rec[1] or rec[2])):
                raise errors.LengthMismatch(
                    source,
                    number,
                    f"{_RECORD_NAMES[kind]} record needs {want} data bytes at offset 0",
                )
            if kind == _EOF:
                eof_line = number
            elif kind == _ESA:
                base = ((rec[4] << 8) | rec[5]) << 4
                segmented = True
            elif kind == _ELA:
                base = ((rec[4] << 8) | rec[5]) << 16
                segmented = False
            elif kind == _SSA:
                start = StartAddress.segment((rec[4] << 8) | rec[5], (rec[6] << 8) | rec[7])
            else:
                start = StartAddress.linear(int.from_bytes(rec[4:8], "big"))
    if not eof_line:
        raise errors.MissingEof(source, number, "input ends without an end-of-file record")
    if run:
        runs.append((run_start, run))
    image = Image.from_runs(runs)
    image.start_address = start
    return image


def emit_ihex(image: Image, record_length: int = 16) -> str:
    """Return Intel HEX text; extended linear address records only where needed."""
    return join_pieces(iter_ihex(image, record_length))


def iter_ihex(image: Image, record_length: int = 16) -> Iterator[str]:
    """Yield Intel HEX text in pieces of bounded size (for streaming to a file)."""
    if not 1 <= record_length <= 255:
        raise ValueError(f"record_length must be 1..255, not {record_length}")
    upper = 0
    for seg in image.segments():
        position = seg.start
        view = memoryview(seg.data)
        while position < seg.end:
            if position >> 16 != upper:
                upper = position >> 16
                yield _record(_ELA, 0, upper.to_bytes(2, "big"))
            chunk_end = min(seg.end, (upper + 1) << 16, position + 0x4000 * record_length)
            chunk = view[position - seg.start : chunk_end - seg.start]
            yield encode_records(":", position & 0xFFFF, 2, chunk, record_length,
                                 count_extra=0, kind=_DATA, ones_complement=False)  # fmt: skip
            position = chunk_end
    if image.start_address is not None:
        sa = image.start_address
        if sa.kind == "segment":
            payload = (sa.cs or 0).to_bytes(2, "big") + (sa.ip or 0).to_bytes(2, "big")
            yield _record(_SSA, 0, payload)
        else:
            yield _record(_SLA, 0, (sa.eip or 0).to_bytes(4, "big"))
    yield ":00000001FF\n"


def _record(kind: int, offset: int, payload: bytes) -> str:
    return encode_one(":", offset, 2, payload, count_extra=0, kind=kind, ones_complement=False)
