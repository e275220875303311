"""Thin pyserial I/O for the ROM bootloader: whole-frame writes, bounded reads, modem lines."""

from __future__ import annotations

import os
import stat
from typing import Literal

import serial

from provisioner.errors import BoardDisconnected, LinkTimeout, ProbeError

Parity = Literal["even", "none"]
_PARITY = {"even": serial.PARITY_EVEN, "none": serial.PARITY_NONE}
# Linux Unix98 pseudo-terminal slaves (/dev/pts/N) use majors 136-143 (devices.txt).
_PTY_MAJORS = range(136, 144)


def is_pseudo_terminal(port: str) -> bool:
    """Return True when ``port`` is a pseudo-terminal: no parity, no modem lines."""
    try:
        mode = os.stat(port)
    except OSError:
        return False
    return stat.S_ISCHR(mode.st_mode) and os.major(mode.st_rdev) in _PTY_MAJORS


class SerialLink:
    """One open serial port; every foreign error becomes a FlashError here."""

    def __init__(self, port: str, baud: int, parity: Parity) -> None:
        self.port = port
        self.baud = baud
        self.parity = parity
        self._serial: serial.Serial | None = None
        self._timeout_s: float | None = None

    def open(self) -> None:
        """Open the port 8 data bits, the given parity, 1 stop bit."""
        try:
            self._serial = serial.Serial(
                self.port, self.baud, bytesize=serial.EIGHTBITS, parity=_PARITY[self.parity],
                stopbits=serial.STOPBITS_ONE, timeout=1.0, write_timeout=10.0,
            )
        except (serial.SerialException, ValueError) as exc:
            if not os.path.exists(self.port):
                raise BoardDisconnected(self.port, "the port does not exist") from exc
            raise ProbeError(f"cannot open {self.port} at {self.baud} baud: {exc}") from exc
        self._timeout_s = 1.0

    def close(self) -> None:
        """Close the port (safe to call twice)."""
        if self._serial is not None:
            self._serial.close()
            self._serial = None

    def write(self, frame: bytes) -> None:
        """Send a whole frame in one system call."""
        try:
            self._port().write(frame)
        except serial.SerialException as exc:
            raise BoardDisconnected(self.port, f"writing failed: {exc}") from exc

    def read(self, size: int, timeout_s: float, command: str, phase: str,
             address: int | None = None) -> bytes:
        """Read exactly ``size`` bytes within ``timeout_s`` or raise LinkTimeout."""
        port = self._port()
        if self._timeout_s != timeout_s:
            port.timeout = timeout_s
            self._timeout_s = timeout_s
        try:
            data = port.read(size)
        except serial.SerialException as exc:
            raise BoardDisconnected(self.port, f"reading failed: {exc}") from exc
        if len(data) != size:
            raise LinkTimeout(command, phase, address)
        return bytes(data)

    def discard_input(self) -> None:
        """Drop bytes already received (stale answers after a failure)."""
        try:
            self._port().reset_input_buffer()
        except serial.SerialException as exc:
            raise ProbeError(f"flushing {self.port} failed: {exc}") from exc

    def set_line(self, line: Literal["rts", "dtr"], asserted: bool) -> None:
        """Assert or release the RTS or DTR modem line."""
        port = self._port()
        try:
            if line == "rts":
                port.rts = asserted
            else:
                port.dtr = asserted
        except (serial.SerialException, OSError) as exc:
            raise ProbeError(f"cannot drive {line.upper()} on {self.port}: {exc}") from exc

    def _port(self) -> serial.Serial:
        if self._serial is None:
            raise ProbeError(f"{self.port} is not open")
        return self._serial
