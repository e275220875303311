"""Device link framing between the technician relay and a device (spec §9)."""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Protocol

from provisioner.errors import ProvisionerError

MAX_FRAME_BYTES = 1 << 20
_HEADER = struct.Struct("<BI")


class Frame(IntEnum):
    """Frame types."""

    get_pending_result = 0x01
    ack_result = 0x02
    get_request = 0x03
    package = 0x04
    error = 0x7F
    pending_result = 0x81
    request = 0x83
    result = 0x84


class LinkError(ProvisionerError):
    """The device link broke or carried a frame that does not belong there."""


class Stream(Protocol):
    """A byte stream: a serial port, a pty, a pipe."""

    def read(self, size: int) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...


def write_frame(stream: Stream, kind: Frame, payload: bytes = b"") -> None:
    """Send one frame."""
    stream.write(_HEADER.pack(int(kind), len(payload)) + payload)


def _read_exact(stream: Stream, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        chunk = stream.read(size - len(out))
        if not chunk:
            raise LinkError(f"link closed after {len(out)} of {size} bytes")
        out += chunk
    return bytes(out)


def read_frame(stream: Stream) -> tuple[Frame, bytes]:
    """Receive one frame.

    Raises:
        LinkError: the link closed, an unknown type, or a frame over 1 MiB.
    """
    kind, size = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    if kind not in Frame._value2member_map_:
        raise LinkError(f"unknown frame type 0x{kind:02x}")
    if size > MAX_FRAME_BYTES:
        raise LinkError(f"frame of {size} bytes exceeds {MAX_FRAME_BYTES}")
    return Frame(kind), _read_exact(stream, size)
