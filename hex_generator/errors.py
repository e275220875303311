"""Error tree of hex_generator.

HexError
├─ HexFormatError(source, line, reason)
│   ├─ BadChecksum        ├─ OddDigitCount     ├─ UnknownRecordType
│   ├─ LengthMismatch     ├─ MissingEof        ├─ DataAfterEof
│   ├─ AddressOverflow    ├─ BadRecordStart    └─ BadHexDigit
├─ OverlapError(first, second)
├─ ImageTooLarge(start, end, limit)
└─ ZoneError(zone, reason)
"""

from __future__ import annotations


class HexError(Exception):
    """Base class of every hex_generator error."""


class HexFormatError(HexError):
    """Malformed input text: names the source, the 1-based line and the reason."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(source, line, reason)
        self.source = source
        self.line = line
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


class BadChecksum(HexFormatError):
    """A record's checksum does not match its contents."""


class OddDigitCount(HexFormatError):
    """A record holds an odd number of hex digits."""


class UnknownRecordType(HexFormatError):
    """A record type this reader does not support."""


class LengthMismatch(HexFormatError):
    """A record's byte count disagrees with its length."""


class MissingEof(HexFormatError):
    """The input ends without an end-of-file record."""


class DataAfterEof(HexFormatError):
    """A record follows the end-of-file record."""


class AddressOverflow(HexFormatError):
    """A record's data runs past the format's address space."""


class BadRecordStart(HexFormatError):
    """A line does not begin with the record mark (':' or 'S')."""


class BadHexDigit(HexFormatError):
    """A record holds a character that is not a hex digit."""


def _range(r: tuple[int, int]) -> str:
    return f"[0x{r[0]:08X}, 0x{r[1]:08X})"


class OverlapError(HexError):
    """Two data ranges overlap with different bytes."""

    def __init__(self, first: tuple[int, int], second: tuple[int, int]) -> None:
        super().__init__(first, second)
        self.first = first
        self.second = second

    def __str__(self) -> str:
        return f"data {_range(self.second)} overlaps {_range(self.first)} with different bytes"


class ImageTooLarge(HexError):
    """A sparse image would expand past the allowed size when written out contiguously."""

    def __init__(self, start: int, end: int, limit: int) -> None:
        self.start = start
        self.end = end
        self.limit = limit
        super().__init__(start, end, limit)

    def __str__(self) -> str:
        return (f"image spans {_range((self.start, self.end))} = {self.end - self.start:,} "
                f"bytes as a binary, more than the limit of {self.limit:,} bytes")


class ZoneError(HexError):
    """A patch zone is missing from the template, not blank, or cannot hold its value."""

    def __init__(self, zone: str, reason: str) -> None:
        super().__init__(zone, reason)
        self.zone = zone
        self.reason = reason

    def __str__(self) -> str:
        return f"zone {self.zone!r}: {self.reason}"
