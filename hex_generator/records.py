"""Vectorised record encoding shared by the Intel HEX and S-record writers.

Runs of full records are built column by column with extended-slice assignments, their
checksums summed in 32-bit lanes of one big integer, and the text produced by one `bytes.hex`
call, so the per-record cost stays in C.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable

_LANE_BYTES = 4  # a record sums to at most 260 * 255 = 66300: fits a 32-bit lane with room


def join_pieces(pieces: Iterable[str]) -> str:
    """Concatenate text pieces, growing one string in place (peak ≈ result + one piece).

    CPython resizes a sole-owner string on `+=` instead of copying; "".join would hold every
    piece and the result at once, twice the memory.
    """
    out = ""
    for piece in pieces:
        out += piece
    return out


def _address_columns(first: int, step: int, count: int, width: int) -> list[bytes]:
    words = array("I", range(first, first + step * count, step))
    if words.itemsize != 4:  # pragma: no cover - every CPython platform has 32-bit "I"
        words = array("L", words)
    if sys.byteorder == "little":
        words.byteswap()
    raw = words.tobytes()
    size = words.itemsize
    return [raw[size - width + k :: size] for k in range(width)]


def encode_records(
    mark: str,
    address: int,
    address_width: int,
    data: bytes | bytearray | memoryview,
    record_length: int,
    *,
    count_extra: int,
    kind: int | None,
    ones_complement: bool,
) -> str:
    """Return the text lines of data records covering `data` from `address`.

    Each record is: count byte (data length + `count_extra`), big-endian address of
    `address_width` bytes, the `kind` byte if not None, data, checksum (two's complement of
    the byte sum for Intel HEX, ones' complement for S-records); rendered as `mark` + hex.
    """
    view = memoryview(data).cast("B")
    full = len(view) // record_length
    out = ""
    if full:
        head = view[: full * record_length]
        out = _encode_full(
            mark, address, address_width, head, record_length, count_extra, kind, ones_complement
        )
    rest = view[full * record_length :]
    if len(rest):
        at = address + full * record_length
        out += encode_one(mark, at, address_width, bytes(rest), count_extra=count_extra,
                          kind=kind, ones_complement=ones_complement)  # fmt: skip
    return out


def encode_one(
    mark: str,
    address: int,
    address_width: int,
    payload: bytes,
    *,
    count_extra: int,
    kind: int | None,
    ones_complement: bool,
) -> str:
    """Return one record line (see encode_records for the layout)."""
    body = bytes((len(payload) + count_extra,)) + address.to_bytes(address_width, "big")
    if kind is not None:
        body += bytes((kind,))
    body += payload
    total = sum(body)
    check = ~total & 0xFF if ones_complement else -total & 0xFF
    return mark + (body + bytes((check,))).hex().upper() + "\n"


def _encode_full(
    mark: str,
    address: int,
    address_width: int,
    view: memoryview,
    record_length: int,
    count_extra: int,
    kind: int | None,
    ones_complement: bool,
) -> str:
    count = len(view) // record_length
    header = 1 + address_width + (kind is not None)
    size = header + record_length + 1
    blob = bytearray(size * count)
    blob[0::size] = bytes((record_length + count_extra,)) * count
    for k, column in enumerate(_address_columns(address, record_length, count, address_width)):
        blob[1 + k :: size] = column
    if kind:
        blob[header - 1 :: size] = bytes((kind,)) * count
    for k in range(record_length):
        blob[header + k :: size] = view[k::record_length]
    # Sum every column into 32-bit lanes, one lane per record.
    total = 0
    lane = bytearray(_LANE_BYTES * count)
    for k in range(size - 1):
        lane[0::_LANE_BYTES] = blob[k::size]
        total += int.from_bytes(lane, "little")
    bias = 0x100000 - 1 if ones_complement else 0x100000  # multiple of 256 (minus 1 for ~)
    biases = int.from_bytes(bias.to_bytes(_LANE_BYTES, "little") * count, "little")
    blob[size - 1 :: size] = (biases - total).to_bytes(_LANE_BYTES * count, "little")[
        0::_LANE_BYTES
    ]
    text = blob.hex("\n", size).upper()
    return mark + text.replace("\n", "\n" + mark) + "\n"
