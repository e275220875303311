"""Raw binary reader and writer with a base address."""

from __future__ import annotations

from hex_generator.errors import ImageTooLarge
from hex_generator.image import Image

DEFAULT_MAX_BINARY_BYTES = 256 * 2**20


def parse_binary(data: bytes | bytearray | memoryview, base: int = 0) -> Image:
    """Return an image holding `data` at `base` (an empty input gives an empty image)."""
    image = Image()
    image.add(base, data)
    return image


def emit_binary(
    image: Image, fill_byte: int = 0xFF, *, max_size_bytes: int = DEFAULT_MAX_BINARY_BYTES
) -> bytes:
    """Return the bytes from the image's lowest to its highest address, gaps = `fill_byte`.

    Raises:
        ImageTooLarge: the span is over ``max_size_bytes`` (two bytes 4 GiB apart would
            otherwise allocate 4 GiB); checked before anything is allocated.
    """
    start = image.min_address
    if image.max_address - start > max_size_bytes:
        raise ImageTooLarge(start, image.max_address, max_size_bytes)
    return bytes(image.read(start, image.max_address - start, fill_byte))
