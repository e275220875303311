"""Checksums: published check values for "123456789" and the STM32 CRC unit's word order."""

from __future__ import annotations

import hashlib
import os

import pytest

from hex_generator import ChecksumAlgorithm, checksum
from hex_generator.checksums import (
    checksum_bytes,
    crc16_ccitt_false,
    crc32_iso_hdlc,
    crc32_mpeg2,
    crc32_stm32,
)

CHECK = b"123456789"


def crc32_stm32_bitwise(data: bytes) -> int:
    """Reference model of the STM32 CRC unit (RM0008 §4): one bit at a time."""
    crc = 0xFFFFFFFF
    for i in range(0, len(data), 4):
        crc ^= int.from_bytes(data[i : i + 4], "little")
        for _ in range(32):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def test_published_check_values() -> None:
    assert crc32_iso_hdlc(CHECK) == 0xCBF43926
    assert crc16_ccitt_false(CHECK) == 0x29B1
    assert crc32_mpeg2(CHECK) == 0x0376E6E7
    assert checksum(ChecksumAlgorithm.sha256, CHECK) == hashlib.sha256(CHECK).digest()


@pytest.mark.parametrize("size", [0, 4, 8, 64, 1028])
def test_stm32_crc_matches_bitwise_model_and_mpeg2_on_swapped_words(size: int) -> None:
    data = os.urandom(size)
    swapped = b"".join(data[i : i + 4][::-1] for i in range(0, size, 4))
    assert crc32_stm32(data) == crc32_stm32_bitwise(data) == crc32_mpeg2(swapped)


def test_stm32_crc_known_word() -> None:
    # Widely published results of the CRC unit fed one word after reset.
    assert crc32_stm32(bytes(4)) == 0xC704DD7B
    assert crc32_stm32((0x12345678).to_bytes(4, "little")) == 0xDF8A8A2B


def test_stm32_crc_needs_whole_words() -> None:
    with pytest.raises(ValueError, match="32-bit words"):
        crc32_stm32(b"123")


@pytest.mark.parametrize("algorithm", list(ChecksumAlgorithm))
def test_every_algorithm_stores_in_its_size(algorithm: ChecksumAlgorithm) -> None:
    size = {"crc16_ccitt_false": 2, "sha256": 8}.get(algorithm, 4)
    stored = checksum_bytes(algorithm, b"12345678", size, "big")
    value = checksum(algorithm, b"12345678")
    expected = value[:size] if isinstance(value, bytes) else value.to_bytes(size, "big")
    assert stored == expected
    with pytest.raises(ValueError, match="bytes"):
        checksum_bytes(algorithm, b"12345678", 33, "big")


def test_byteorder_little_reverses_crc() -> None:
    assert checksum_bytes(ChecksumAlgorithm.crc32, CHECK, 4, "little") == bytes.fromhex("2639F4CB")
