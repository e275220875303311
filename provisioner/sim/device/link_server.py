"""Serve the reference device's side of the technician link (spec §9) on a pseudo-terminal."""

from __future__ import annotations

import os
import struct
import tty

from provisioner.errors import InstallRefused
from provisioner.sim.device.device import ReferenceDevice, Signed
from provisioner.update.link import Frame, LinkError, read_frame, write_frame


class FdStream:
    """A file descriptor as a link stream."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" when the other side hung up."""
        try:
            return os.read(self._fd, size)
        except OSError:  # EIO: the pty's other end closed
            return b""

    def write(self, data: bytes) -> int:
        """Write everything."""
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        return len(data)


def open_pty() -> tuple[int, str]:
    """A raw pseudo-terminal: (the device's fd, the path a relay opens)."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    return master, os.ttyname(slave)


def _signed(item: Signed | None) -> bytes:
    return b"" if item is None else item.body + item.mac


def serve_link(device: ReferenceDevice, stream: FdStream) -> None:
    """Answer relay frames until the link closes (a relay may connect again and again)."""
    while True:
        try:
            kind, payload = read_frame(stream)
        except LinkError:
            return
        try:
            if kind == Frame.get_pending_result:
                write_frame(stream, Frame.pending_result, _signed(device.pending_result()))
            elif kind == Frame.ack_result and len(payload) == 4:
                device.acknowledge(struct.unpack("<I", payload)[0])
            elif kind == Frame.get_request:
                write_frame(stream, Frame.request, _signed(device.make_request()))
            elif kind == Frame.package:
                write_frame(stream, Frame.result, _signed(device.install(payload)))
            else:
                write_frame(stream, Frame.error, f"unexpected frame {kind.name}".encode())
        except InstallRefused as exc:  # malformed input the device could not even parse
            write_frame(stream, Frame.error, str(exc).encode())
