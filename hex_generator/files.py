"""Thin file loaders: pick the format by extension or content, read or write one file."""

from __future__ import annotations

from pathlib import Path

from hex_generator.binary import DEFAULT_MAX_BINARY_BYTES, emit_binary, parse_binary
from hex_generator.errors import HexError
from hex_generator.ihex import iter_ihex, parse_ihex
from hex_generator.image import Image
from hex_generator.srec import iter_srec, parse_srec

FORMATS = ("ihex", "srec", "binary")
_EXTENSIONS = {
    ".hex": "ihex", ".ihex": "ihex", ".ihx": "ihex",
    ".s19": "srec", ".s28": "srec", ".s37": "srec", ".srec": "srec", ".mot": "srec", ".s": "srec",
    ".bin": "binary",
}  # fmt: skip


def detect_format(path: Path, head: bytes) -> str:
    """Return "ihex", "srec" or "binary" from the extension, else from the first byte."""
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is not None:
        return fmt
    first = head.lstrip()[:1]
    return "ihex" if first == b":" else "srec" if first in (b"S", b"s") else "binary"


def load(path: str | Path, *, fmt: str | None = None, base: int = 0) -> Image:
    """Read an image file; `base` applies to binary files only.

    Raises:
        HexFormatError: the file is malformed (names the file and line).
        HexError: the file cannot be read or the format is unknown.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise HexError(f"{path}: cannot read: {exc.strerror}") from exc
    fmt = fmt or detect_format(path, raw[:64])
    if fmt == "binary":
        return parse_binary(raw, base)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise HexError(
            f"{path}: byte 0x{raw[exc.start]:02X} at offset {exc.start} is not ASCII"
        ) from exc
    del raw
    if fmt == "ihex":
        return parse_ihex(text, str(path))
    if fmt == "srec":
        return parse_srec(text, str(path))
    raise HexError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def save(
    path: str | Path, image: Image, *, fmt: str | None = None, record_length: int = 16,
    max_binary_bytes: int = DEFAULT_MAX_BINARY_BYTES,
) -> None:
    """Write an image file, streaming the text (record_length: data bytes per record).

    Raises:
        HexError: the file cannot be written or the format is unknown. ImageTooLarge: a
            binary would span more than ``max_binary_bytes``.
    """
    path = Path(path)
    fmt = fmt or _EXTENSIONS.get(path.suffix.lower(), "ihex")
    try:
        if fmt == "binary":
            path.write_bytes(emit_binary(image, max_size_bytes=max_binary_bytes))
            return
        if fmt == "ihex":
            pieces = iter_ihex(image, record_length)
        elif fmt == "srec":
            pieces = iter_srec(image, record_length)
        else:
            raise HexError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        with path.open("w", encoding="ascii", newline="\n") as stream:
            for piece in pieces:
                stream.write(piece)
    except OSError as exc:
        raise HexError(f"{path}: cannot write: {exc.strerror}") from exc
