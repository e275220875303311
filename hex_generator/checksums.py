"""Checksums over image ranges: CRC-32/ISO-HDLC, STM32 CRC unit, CRC-16/CCITT-FALSE, SHA-256."""

from __future__ import annotations

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


def _stm32_table() -> tuple[tuple[int, ...], ...]:
    # Four byte-indexed tables (slicing-by-4) for the MSB-first polynomial 0x04C11DB7.
    base = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = (
                ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF
                if crc & 0x80000000
                else (crc << 1) & 0xFFFFFFFF
            )
        base.append(crc)
    tables = [tuple(base)]
    for _ in range(3):
        prev = tables[-1]
        tables.append(
            tuple(((prev[i] << 8) & 0xFFFFFFFF) ^ base[prev[i] >> 24] for i in range(256))
        )
    return tuple(tables)


_T0, _T1, _T2, _T3 = _stm32_table()


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
    crc = init
    t0, t1, t2, t3 = _T0, _T1, _T2, _T3
    # Each little-endian word enters MSB first: bytes 3, 2, 1, 0 of the memory order.
    for word in view.cast("I") if _NATIVE_LITTLE else _words(view):
        crc ^= word
        crc = t3[crc >> 24] ^ t2[(crc >> 16) & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t0[crc & 0xFF]
    return crc


def _words(view: memoryview) -> list[int]:
    return [int.from_bytes(view[i : i + 4], "little") for i in range(0, len(view), 4)]


_NATIVE_LITTLE = memoryview(b"\x01\x00\x00\x00").cast("I")[0] == 1


def crc32_mpeg2(data: bytes | bytearray | memoryview) -> int:
    """Return CRC-32/MPEG-2 (the STM32 polynomial fed byte by byte); check value 0x0376E6E7."""
    crc = 0xFFFFFFFF
    t0 = _T0
    for byte in memoryview(data).cast("B"):
        crc = ((crc << 8) & 0xFFFFFFFF) ^ t0[(crc >> 24) ^ byte]
    return crc


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
