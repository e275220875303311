"""Pure STM32 USART bootloader framing (AN3155): commands, XOR checksums, frames and replies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import reduce

from provisioner.errors import BootloaderNack, GarbledReply

SYNC = 0x7F
ACK = 0x79
NACK = 0x1F
MAX_BLOCK_BYTES = 256
LEGACY_MASS_ERASE = 0xFF
EXTENDED_MASS_ERASE = 0xFFFF


class Command(IntEnum):
    """AN3155 §2 command codes."""

    get = 0x00
    get_version = 0x01
    get_id = 0x02
    read_memory = 0x11
    go = 0x21
    write_memory = 0x31
    erase = 0x43
    extended_erase = 0x44
    write_protect = 0x63
    write_unprotect = 0x73
    readout_protect = 0x82
    readout_unprotect = 0x92


def xor(data: bytes | bytearray | memoryview | Sequence[int]) -> int:
    """Return the XOR of every byte (the AN3155 checksum)."""
    return reduce(lambda a, b: a ^ b, data, 0)


def command_frame(command: int) -> bytes:
    """Encode a command byte followed by its complement (AN3155 §2)."""
    return bytes((command, command ^ 0xFF))


def decode_command_frame(frame: bytes) -> int | None:
    """Return the command of a 2-byte frame, or None when the complement is wrong."""
    if len(frame) != 2 or frame[0] ^ frame[1] != 0xFF:
        return None
    return frame[0]


def address_frame(address: int) -> bytes:
    """Encode a 32-bit address, MSB first, with its XOR checksum."""
    raw = address.to_bytes(4, "big")
    return raw + bytes((xor(raw),))


def decode_address_frame(frame: bytes) -> int | None:
    """Return the address of a 5-byte frame, or None when its checksum is wrong."""
    if len(frame) != 5 or xor(frame) != 0:
        return None
    return int.from_bytes(frame[:4], "big")


def read_length_frame(size: int) -> bytes:
    """Encode the byte count of a Read Memory (1..256) as N-1 and its complement."""
    _check_block(size)
    return command_frame(size - 1)


def decode_read_length_frame(frame: bytes) -> int | None:
    """Return the byte count (1..256) of a Read Memory length frame, or None if corrupt."""
    value = decode_command_frame(frame)
    return None if value is None else value + 1


def data_frame(data: bytes | bytearray | memoryview) -> bytes:
    """Encode a Write Memory payload: N-1, the bytes, XOR of both (AN3155 §3.6)."""
    _check_block(len(data))
    head = bytes((len(data) - 1,))
    return head + bytes(data) + bytes((xor(head) ^ xor(data),))


def decode_data_frame(frame: bytes) -> bytes | None:
    """Return the payload of a complete Write Memory data frame, or None if corrupt."""
    if len(frame) < 3 or len(frame) != frame[0] + 3 or xor(frame) != 0:
        return None
    return frame[1:-1]


def legacy_erase_frame(pages: Sequence[int] | None) -> bytes:
    """Encode an Erase (0x43) argument: page numbers, or None for a global erase."""
    if pages is None:
        return bytes((LEGACY_MASS_ERASE, 0x00))
    if not 1 <= len(pages) <= 255 or any(not 0 <= p <= 0xFF for p in pages):
        raise ValueError("legacy erase takes 1..255 pages numbered 0..255")
    body = bytes((len(pages) - 1, *pages))
    return body + bytes((xor(body),))


def extended_erase_frame(pages: Sequence[int] | None) -> bytes:
    """Encode an Extended Erase (0x44) argument: 16-bit page numbers, or None for mass erase."""
    if pages is None:
        special = EXTENDED_MASS_ERASE.to_bytes(2, "big")
        return special + bytes((xor(special),))
    if not 1 <= len(pages) <= 0xFFF0 or any(not 0 <= p <= 0xFFFF for p in pages):
        raise ValueError("extended erase takes 1..65520 pages numbered 0..65535")
    body = (len(pages) - 1).to_bytes(2, "big") + b"".join(p.to_bytes(2, "big") for p in pages)
    return body + bytes((xor(body),))


def sector_list_frame(sectors: Sequence[int]) -> bytes:
    """Encode a Write Protect (0x63) argument: N-1, sector numbers, checksum."""
    return legacy_erase_frame(sectors)


@dataclass(frozen=True, slots=True)
class BootloaderInfo:
    """What Get (0x00) reports: protocol version and supported commands."""

    version: int
    commands: frozenset[int]

    @property
    def erase_command(self) -> Command:
        """Erase (0x43) or Extended Erase (0x44), whichever the chip supports (never both)."""
        if Command.extended_erase in self.commands:
            return Command.extended_erase
        if Command.erase in self.commands:
            return Command.erase
        found = bytes(sorted(self.commands))
        raise GarbledReply("get", "in the command list", "0x43 or 0x44", found)


def encode_get_reply(info: BootloaderInfo) -> bytes:
    """Encode the body of a Get answer between its two ACKs: N, version, commands."""
    commands = bytes(sorted(info.commands))
    return bytes((len(commands), info.version)) + commands


def decode_get_reply(body: bytes) -> BootloaderInfo:
    """Decode the body of a Get answer (N, version, N command codes)."""
    if len(body) < 2 or len(body) != body[0] + 2:
        raise GarbledReply("get", "in the reply", "N, version and N commands", body)
    return BootloaderInfo(version=body[1], commands=frozenset(body[2:]))


def encode_get_id_reply(product_id: int) -> bytes:
    """Encode the body of a Get ID answer: N=1 and the 2-byte PID."""
    return bytes((1,)) + product_id.to_bytes(2, "big")


def decode_get_id_reply(body: bytes) -> int:
    """Decode the body of a Get ID answer into the product ID."""
    if len(body) < 3 or body[0] != len(body) - 2:
        raise GarbledReply("get_id", "in the reply", "N and the product ID", body)
    return int.from_bytes(body[1:], "big")


def check_ack(reply: bytes, command: str, phase: str, address: int | None = None) -> None:
    """Raise BootloaderNack or GarbledReply unless ``reply`` is a single ACK."""
    if reply == bytes((ACK,)):
        return
    if reply == bytes((NACK,)):
        raise BootloaderNack(command, phase, address)
    raise GarbledReply(command, phase, "ACK 0x79", reply)


def blocks(start: int, size: int, block_bytes: int = MAX_BLOCK_BYTES) -> list[tuple[int, int]]:
    """Split ``[start, start+size)`` into (address, size) blocks not crossing a block boundary."""
    out: list[tuple[int, int]] = []
    address, end = start, start + size
    while address < end:
        step = min(block_bytes - address % block_bytes, end - address)
        out.append((address, step))
        address += step
    return out


def _check_block(size: int) -> None:
    if not 1 <= size <= MAX_BLOCK_BYTES:
        raise ValueError(f"a block holds 1..{MAX_BLOCK_BYTES} bytes, not {size}")
