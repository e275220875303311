"""Sparse memory image: sorted, coalesced segments over half-open [start, end) ranges."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from hex_generator.errors import HexError, OverlapError

ADDRESS_LIMIT = 1 << 32


@dataclass(frozen=True, slots=True)
class Segment:
    """One contiguous run of bytes starting at `start` (the buffer is live: do not resize it)."""

    start: int
    data: bytearray = field(repr=False)

    @property
    def end(self) -> int:
        """Address one past the last byte."""
        return self.start + len(self.data)

    def __repr__(self) -> str:
        return f"Segment(0x{self.start:08X}, 0x{self.end:08X})"


@dataclass(frozen=True, slots=True)
class StartAddress:
    """Execution start: Intel HEX type 03 (CS:IP) or type 05 / S7-S9 (EIP)."""

    kind: Literal["segment", "linear"]
    cs: int | None = None
    ip: int | None = None
    eip: int | None = None

    @classmethod
    def segment(cls, cs: int, ip: int) -> StartAddress:
        """Build a real-mode CS:IP start address."""
        return cls("segment", cs=cs, ip=ip)

    @classmethod
    def linear(cls, eip: int) -> StartAddress:
        """Build a 32-bit linear start address."""
        return cls("linear", eip=eip)

    @property
    def entry(self) -> int:
        """Entry address: CS*16+IP for a segment start, else EIP."""
        if self.kind == "segment":
            return ((self.cs or 0) << 4) + (self.ip or 0)
        return self.eip or 0


def _check_range(start: int, end: int) -> None:
    if not 0 <= start <= end <= ADDRESS_LIMIT:
        raise HexError(f"bad range [0x{start:X}, 0x{end:X}): need 0 <= start <= end <= 2**32")


class Image:
    """Sparse address → byte map kept as sorted, non-adjacent segments."""

    __slots__ = ("_segments", "_starts", "start_address")
    __hash__ = None  # type: ignore[assignment]  # mutable

    def __init__(self) -> None:
        self._segments: list[Segment] = []
        self._starts: list[int] = []
        self.start_address: StartAddress | None = None

    @classmethod
    def from_runs(cls, runs: Iterable[tuple[int, bytes | bytearray]]) -> Image:
        """Build an image from (address, data) runs in any order; bytearrays may be adopted.

        Raises:
            OverlapError: two runs overlap with different bytes.
        """
        image = cls()
        ordered = sorted((r for r in runs if len(r[1])), key=lambda r: r[0])
        segs = image._segments
        for start, data in ordered:
            end = start + len(data)
            _check_range(start, end)
            if segs and start <= segs[-1].end:
                last = segs[-1]
                _check_same(last, start, data)
                if end > last.end:
                    last.data.extend(memoryview(data)[last.end - start :])
            else:
                segs.append(
                    Segment(start, data if isinstance(data, bytearray) else bytearray(data))
                )
        image._starts = [s.start for s in segs]
        return image

    def add(self, address: int, data: bytes | bytearray | memoryview) -> None:
        """Add bytes at `address`; adjacent runs coalesce, identical overlap is accepted.

        Raises:
            OverlapError: the new bytes differ from bytes already at those addresses.
        """
        size = len(data)
        if size == 0:
            return
        end = address + size
        _check_range(address, end)
        segs, starts = self._segments, self._starts
        first = bisect_right(starts, address) - 1
        if first < 0 or segs[first].end < address:
            first += 1
        last = bisect_right(starts, end) - 1  # last segment starting at or before `end`
        if first > last:  # touches nothing: plain insert
            segs.insert(first, Segment(address, bytearray(data)))
            starts.insert(first, address)
            return
        for seg in segs[first : last + 1]:
            _check_same(seg, address, data)
        head = segs[first]
        tail_end = max(end, segs[last].end)
        if head.start <= address:
            buf = head.data
            start = head.start
        else:
            buf = bytearray()
            start = address
        new_len = tail_end - start
        buf.extend(bytes(new_len - len(buf)))
        for seg in segs[first + 1 : last + 1]:
            buf[seg.start - start : seg.end - start] = seg.data
        buf[address - start : end - start] = data
        if head.start > address:
            buf[head.start - start : head.end - start] = head.data
        segs[first : last + 1] = [Segment(start, buf) if buf is not head.data else head]
        starts[first : last + 1] = [start]

    def segments(self) -> Iterator[Segment]:
        """Yield segments sorted by address (live buffers: copy before changing)."""
        return iter(list(self._segments))

    def ranges(self) -> list[tuple[int, int]]:
        """Return the half-open (start, end) ranges that hold data."""
        return [(s.start, s.end) for s in self._segments]

    def read(self, address: int, size: int, fill_byte: int | None = None) -> bytearray:
        """Return `size` bytes from `address`; gaps take `fill_byte`.

        Raises:
            HexError: the range has a gap and no fill byte was given.
        """
        end = address + size
        _check_range(address, end)
        out = bytearray([fill_byte or 0]) * size
        covered = 0
        for seg in self._overlapping(address, end):
            lo, hi = max(seg.start, address), min(seg.end, end)
            out[lo - address : hi - address] = memoryview(seg.data)[lo - seg.start : hi - seg.start]
            covered += hi - lo
        if covered != size and fill_byte is None:
            raise HexError(f"gap in [0x{address:08X}, 0x{end:08X}) and no fill byte given")
        return out

    def slice(self, start: int, end: int) -> Image:
        """Return a new image holding only the data inside [start, end)."""
        _check_range(start, end)
        image = Image()
        for seg in self._overlapping(start, end):
            lo, hi = max(seg.start, start), min(seg.end, end)
            image._segments.append(Segment(lo, seg.data[lo - seg.start : hi - seg.start]))
        image._starts = [s.start for s in image._segments]
        image.start_address = self.start_address
        return image

    def filled(self, start: int, end: int, fill_byte: int) -> Image:
        """Return a copy in which every gap inside [start, end) holds `fill_byte`."""
        _check_range(start, end)
        image = self.copy()
        if end > start:
            image.add(start, self.read(start, end - start, fill_byte))
        return image

    def merge(self, other: Image) -> Image:
        """Return a new image with the data of both (start address: self's, else other's).

        Raises:
            OverlapError: the images disagree on some byte.
        """
        runs = [(s.start, bytearray(s.data)) for s in self._segments]
        runs += [(s.start, bytearray(s.data)) for s in other._segments]
        image = Image.from_runs(runs)
        image.start_address = self.start_address or other.start_address
        return image

    def copy(self) -> Image:
        """Return an independent copy."""
        image = Image()
        image._segments = [Segment(s.start, bytearray(s.data)) for s in self._segments]
        image._starts = list(self._starts)
        image.start_address = self.start_address
        return image

    def sha256(self, start: int, end: int, fill_byte: int = 0xFF) -> bytes:
        """Return the SHA-256 digest of [start, end), gaps counted as `fill_byte`."""
        _check_range(start, end)
        digest = hashlib.sha256()
        position = start
        for seg in self._overlapping(start, end):
            lo, hi = max(seg.start, start), min(seg.end, end)
            if lo > position:
                _hash_fill(digest, fill_byte, lo - position)
            digest.update(memoryview(seg.data)[lo - seg.start : hi - seg.start])
            position = hi
        _hash_fill(digest, fill_byte, end - position)
        return digest.digest()

    @property
    def min_address(self) -> int:
        """Lowest address holding data (0 for an empty image)."""
        return self._segments[0].start if self._segments else 0

    @property
    def max_address(self) -> int:
        """One past the highest address holding data (0 for an empty image)."""
        return self._segments[-1].end if self._segments else 0

    @property
    def size_bytes(self) -> int:
        """Number of data bytes."""
        return sum(len(s.data) for s in self._segments)

    def __len__(self) -> int:
        return self.size_bytes

    def wipe(self) -> None:
        """Zeroise every segment buffer in place, then empty the image."""
        for seg in self._segments:
            seg.data[:] = bytes(len(seg.data))
        self._segments.clear()
        self._starts.clear()
        self.start_address = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image):
            return NotImplemented
        return (
            self.start_address == other.start_address
            and self._starts == other._starts
            and all(a.data == b.data for a, b in zip(self._segments, other._segments, strict=True))
        )

    def __repr__(self) -> str:
        spans = ", ".join(f"[0x{s.start:08X}, 0x{s.end:08X})" for s in self._segments)
        return f"Image({spans})"

    def _overlapping(self, start: int, end: int) -> list[Segment]:
        first = max(bisect_right(self._starts, start) - 1, 0)
        last = bisect_right(self._starts, end - 1) if end > start else first
        return [s for s in self._segments[first:last] if s.end > start and s.start < end]


def _check_same(seg: Segment, address: int, data: bytes | bytearray | memoryview) -> None:
    lo, hi = max(seg.start, address), min(seg.end, address + len(data))
    if lo >= hi:
        return
    old = memoryview(seg.data)[lo - seg.start : hi - seg.start]
    if old != memoryview(data)[lo - address : hi - address]:
        raise OverlapError((seg.start, seg.end), (address, address + len(data)))


def _hash_fill(digest: hashlib._Hash, fill_byte: int, size: int) -> None:
    block = bytes([fill_byte]) * min(size, 65536)
    while size > 0:
        digest.update(block[: min(size, len(block))])
        size -= len(block)
