"""A virtual board's flash as the device's own CPU sees it: file-backed, page erase, 1→0 writes.

Every program operation goes to the file at once (``os.pwrite``), so a process killed
mid-install leaves exactly the half-written flash a power cut would.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from hw_profiles import Profile


class FlashFault(Exception):
    """A flash operation outside the device's flash or across a page boundary."""


@dataclass(frozen=True, slots=True)
class PowerCut:
    """Crash test: kill this process (SIGKILL, no clean-up: a power cut) before the program
    operation number ``after_writes`` (0-based) that lands in ``[start, end)``."""

    after_writes: int
    start: int = 0
    end: int = 1 << 32


class BoardFlash:
    """The flash file of a virtual board (``base`` is the flash's first address)."""

    def __init__(self, path: Path, profile: Profile, *,
                 power_cut: PowerCut | None = None) -> None:
        if profile.flash.page_size_bytes is None:
            raise FlashFault(f"profile {profile.name} has no uniform flash pages")
        self.path = path
        self.base = profile.flash.base
        self.size_bytes = profile.flash.size_bytes
        self.page_size_bytes = profile.flash.page_size_bytes
        self._cut = power_cut
        self._writes = 0
        self._fd = os.open(path, os.O_RDWR)
        if os.fstat(self._fd).st_size != self.size_bytes:
            os.close(self._fd)
            raise FlashFault(f"{path}: not a {self.size_bytes}-byte flash image")

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)

    def _offset(self, address: int, size: int) -> int:
        if not self.base <= address <= address + size <= self.base + self.size_bytes:
            raise FlashFault(f"0x{address:08x}+{size} lies outside flash")
        return address - self.base

    def read(self, address: int, size: int) -> bytes:
        """Read ``size`` bytes at ``address``."""
        return os.pread(self._fd, size, self._offset(address, size))

    def erase_page(self, address: int) -> None:
        """Erase the page starting at ``address`` to 0xFF."""
        if (address - self.base) % self.page_size_bytes:
            raise FlashFault(f"0x{address:08x} is not a page start")
        os.pwrite(self._fd, b"\xff" * self.page_size_bytes,
                  self._offset(address, self.page_size_bytes))

    def program(self, address: int, data: bytes) -> None:
        """Program ``data`` at ``address``: bits only go from 1 to 0 (NOR flash)."""
        cut = self._cut
        if cut is not None and cut.start <= address < cut.end:
            if self._writes >= cut.after_writes:
                os.kill(os.getpid(), signal.SIGKILL)
            self._writes += 1
        old = self.read(address, len(data))
        os.pwrite(self._fd, bytes(a & b for a, b in zip(old, data, strict=True)),
                  self._offset(address, len(data)))
