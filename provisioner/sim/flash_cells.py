"""What every emulated flash controller shares: the cells, their two views, register lanes."""

from __future__ import annotations

import ctypes
from typing import Protocol

from provisioner.sim.bus import BusFault, RegisterFile
from provisioner.sim.cortex_m import CortexM

DBGMCU_BASE = 0xE0042000


class FlashController(Protocol):
    """What the debugger's view of main flash needs from a flash controller model."""

    memory: memoryview

    @property
    def readout_protected(self) -> bool: ...

    def program(self, offset: int, size: int, value: int) -> None: ...


class FlashCells:
    """Flash cells in a C buffer, so unicorn can map them in place and Python can see them."""

    def __init__(self, content: bytes) -> None:
        self.size_bytes = len(content)
        self._buffer = (ctypes.c_ubyte * self.size_bytes).from_buffer_copy(content)
        self.memory = memoryview(self._buffer).cast("B")

    @property
    def pointer(self) -> int:
        """Host address of the cells (for ``CortexM.map_flash``)."""
        return ctypes.addressof(self._buffer)

    def erase(self, start: int = 0, size_bytes: int | None = None) -> None:
        """Set ``[start, start + size_bytes)`` (default: everything) to the erased state 0xFF."""
        size = self.size_bytes - start if size_bytes is None else size_bytes
        self.memory[start:start + size] = b"\xff" * size


def wire_main_flash(core: CortexM, controller: FlashController, cells: FlashCells,
                    aliases: tuple[int, ...]) -> None:
    """Map main flash at each alias for the core (stores go to ``controller.program``) and for
    the debugger (through ``FlashArray``)."""
    core.map_flash(aliases, cells.memory, cells.pointer, controller.program)
    for alias in aliases:
        core.bus.attach(alias, cells.size_bytes, FlashArray(controller, alias))


def map_read_only(core: CortexM, base: int, content: bytearray) -> None:
    """Factory-programmed memory (UID page, FICR) for both the core and the debugger."""
    device = SystemMemory(base, content)
    core.map_mmio(base, len(content), device)
    core.bus.attach(base, len(content), device)


def map_dbgmcu(core: CortexM, idcode: int) -> None:
    """The STM32 DBGMCU_IDCODE register (device and revision ID)."""
    dbgmcu = RegisterFile({0x0: idcode}, read_only=frozenset({0x0}))
    core.map_device(DBGMCU_BASE, 0x1000, dbgmcu)


def lane(value: int, offset: int, size: int) -> int:
    """The ``size`` bytes of a 32-bit register ``value`` that an access at ``offset`` sees."""
    return (value >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)


class FlashArray:
    """The debugger's view of main flash at one alias: reads refused while RDP is active."""

    def __init__(self, flash: FlashController, alias: int) -> None:
        self._flash = flash
        self._alias = alias

    def read(self, offset: int, size: int) -> int:
        if self._flash.readout_protected:
            raise BusFault(self._alias + offset, "flash read refused: readout protection active")
        return int.from_bytes(self._flash.memory[offset:offset + size], "little")

    def write(self, offset: int, size: int, value: int) -> None:
        if self._flash.readout_protected:
            raise BusFault(self._alias + offset, "flash write refused: readout protection active")
        self._flash.program(offset, size, value)


class SystemMemory:
    """Factory-programmed system memory (UID, flash size): readable, writes fault."""

    def __init__(self, base: int, content: bytearray) -> None:
        self._base = base
        self._content = content

    def read(self, offset: int, size: int) -> int:
        """Little-endian bytes at ``offset``."""
        return int.from_bytes(self._content[offset:offset + size], "little")

    def write(self, offset: int, size: int, value: int) -> None:
        """System memory cannot be written."""
        raise BusFault(self._base + offset, "system memory is read-only")
