"""Checksums over image ranges: CRC-32/ISO-HDLC, STM32 CRC unit, CRC-16/CCITT-FALSE, SHA-256."""

from __future__ import annotations

import array
import binascii
import hashlib
import zlib
from enum import StrEnum


class ChecksumAlgorithm(StrEnum):
    """Checksum algorithms a patch layout may name."""

    crc32 = "crc32"
    crc32_stm32 = "crc32_stm32"
    crc16_ccitt_false = "crc16_ccitt_false"
    sha256 = "sha256"


def crc32_iso_hdlc(data: bytes | bytearray | memoryview) -> int:
    """Return CRC-32/ISO-HDLC (zlib, Ethernet); check value 0xCBF43926."""
    return zlib.crc32(data) & 0xFFFFFFFF


# CRC-32/MPEG-2 and the STM32 unit use the MSB-first polynomial 0x04C11DB7. zlib's CRC-32 is
# the same polynomial processed LSB first (reflected); a reflected CRC over bit-reversed bytes is
# the bit-reverse of the plain CRC, so zlib's C loop computes both (no Python byte loop).
_REVERSED_BITS = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def _reverse32(value: int) -> int:
    return int(f"{value:032b}"[::-1], 2)


def _crc32_msb_first(data: bytearray, init: int) -> int:
    """CRC with poly 0x04C11DB7, MSB first, no reflection, no final XOR; wipes ``data``."""
    reflected = data.translate(_REVERSED_BITS)
    try:
        register = zlib.crc32(reflected, _reverse32(init) ^ 0xFFFFFFFF) ^ 0xFFFFFFFF
    finally:
        zeros = bytes(len(data))  # the range may hold a device key
        reflected[:] = zeros
        data[:] = zeros
    return _reverse32(register)


def crc32_stm32(data: bytes | bytearray | memoryview, init: int = 0xFFFFFFFF) -> int:
    """Return the CRC the STM32 CRC unit computes over `data` fed as little-endian 32-bit words.

    Polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection, no final XOR (RM0008
    §4). Equals CRC-32/MPEG-2 over each word's bytes in big-endian order.

    Raises:
        ValueError: the length is not a multiple of 4.
    """
    view = memoryview(data).cast("B")
    if len(view) % 4:
        raise ValueError(f"STM32 CRC needs whole 32-bit words, got {len(view)} bytes")
    # Each little-endian word enters MSB first: its bytes reversed (array's C byte swap; a
    # strided slice copy in Python costs 100x more on a 64 KiB image).
    words = array.array("I")
    if words.itemsize != 4:  # pragma: no cover - every platform CPython supports has 4
        raise RuntimeError("array 'I' is not 32 bits wide on this platform")
    words.frombytes(view)
    words.byteswap()
    raw = memoryview(words).cast("B")
    swapped = bytearray(raw)
    raw[:] = bytes(len(raw))  # the range may hold a device key
    return _crc32_msb_first(swapped, init)


def crc32_mpeg2(data: bytes | bytearray | memoryview) -> int:
    """Return CRC-32/MPEG-2 (the STM32 polynomial fed byte by byte); check value 0x0376E6E7."""
    return _crc32_msb_first(bytearray(memoryview(data).cast("B")), 0xFFFFFFFF)


def crc16_ccitt_false(data: bytes | bytearray | memoryview) -> int:
    """Return CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF); check value 0x29B1."""
    return binascii.crc_hqx(data, 0xFFFF)


def checksum(algorithm: ChecksumAlgorithm, data: bytes | bytearray | memoryview) -> int | bytes:
    """Return the checksum of `data`: an int for CRCs, the 32-byte digest for SHA-256."""
    if algorithm is ChecksumAlgorithm.crc32:
        return crc32_iso_hdlc(data)
    if algorithm is ChecksumAlgorithm.crc32_stm32:
        return crc32_stm32(data)
    if algorithm is ChecksumAlgorithm.crc16_ccitt_false:
        return crc16_ccitt_false(data)
    return hashlib.sha256(data).digest()


def checksum_bytes(
    algorithm: ChecksumAlgorithm,
    data: bytes | bytearray | memoryview,
    size_bytes: int,
    byteorder: str,
) -> bytes:
    """Return the checksum as `size_bytes` bytes to store (SHA-256 truncated, CRCs encoded).

    Raises:
        ValueError: `size_bytes` cannot hold the value.
    """
    value = checksum(algorithm, data)
    if isinstance(value, bytes):
        if not 1 <= size_bytes <= len(value):
            raise ValueError(f"SHA-256 can be stored in 1..32 bytes, not {size_bytes}")
        return value[:size_bytes]
    width = 2 if algorithm is ChecksumAlgorithm.crc16_ccitt_false else 4
    if size_bytes != width:
        raise ValueError(f"{algorithm} needs {width} bytes, not {size_bytes}")
    return value.to_bytes(width, "little" if byteorder == "little" else "big")
