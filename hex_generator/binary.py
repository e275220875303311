"""Raw binary reader and writer with a base address."""

from __future__ import annotations

from hex_generator.image import Image


def parse_binary(data: bytes | bytearray | memoryview, base: int = 0) -> Image:
    """Return an image holding `data` at `base` (an empty input gives an empty image)."""
    image = Image()
    image.add(base, data)
    return image


def emit_binary(image: Image, fill_byte: int = 0xFF) -> bytes:
    """Return the bytes from the image's lowest to its highest address, gaps = `fill_byte`."""
    start = image.min_address
    return bytes(image.read(start, image.max_address - start, fill_byte))
