"""Line splitting and digit checks shared by the text readers."""

from __future__ import annotations

import string
from collections.abc import Iterator

from hex_generator import errors

_CHUNK_CHARS = 1 << 18  # split large inputs piecewise so a line list never holds the whole text
_HEX_DIGITS = frozenset(string.hexdigits)


def iter_chunks(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (number of the first line, lines) in bounded chunks; LF or CRLF endings.

    Lines keep trailing whitespace and blank lines are included; callers skip them.
    """
    number = 1
    position = 0
    length = len(text)
    while position < length:
        cut = text.find("\n", position + _CHUNK_CHARS)
        cut = length if cut < 0 else cut + 1
        chunk = text[position:cut]
        position = cut
        if "\r" in chunk:
            chunk = chunk.replace("\r\n", "\n")
        lines = chunk.split("\n")
        if lines[-1] == "":
            lines.pop()
        yield number, lines
        number += len(lines)


def iter_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without trailing blanks) for every non-blank line."""
    for first, lines in iter_chunks(text):
        for number, line in enumerate(lines, first):
            if line and not line.isspace():
                yield number, line.rstrip()


def check_hex(digits: str, source: str, line: int, first_column: int) -> None:
    """Raise the error explaining why `digits` (from 1-based `first_column`) is not even hex."""
    for column, char in enumerate(digits, start=first_column):
        if char not in _HEX_DIGITS:
            raise errors.BadHexDigit(
                source, line, f"{char!r} at column {column} is not a hex digit"
            )
    if len(digits) % 2:
        raise errors.OddDigitCount(source, line, f"odd number of hex digits ({len(digits)})")
