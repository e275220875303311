"""The Cortex-M3 ROM table, DWT and FPB as a debugger discovers them (CoreSight ID registers)."""

from __future__ import annotations

from provisioner.sim.bus import Bus, RegisterFile

ROM_TABLE_BASE = 0xE00FF000
DWT_BASE = 0xE0001000
FPB_BASE = 0xE0002000
ARM_JEP106 = (0x3B, 4)  # identity code, continuation count → designer 0x43B

CLASS_ROM_TABLE = 0x1
CLASS_GENERIC = 0xE


def _id_registers(part: int, component_class: int) -> dict[int, int]:
    """PIDR0-4 and CIDR0-3 for an Arm-designed component (CoreSight Architecture §B2)."""
    code, continuation = ARM_JEP106
    return {
        0xFD0: continuation,
        0xFE0: part & 0xFF,
        0xFE4: ((code & 0xF) << 4) | ((part >> 8) & 0xF),
        0xFE8: 0x08 | ((code >> 4) & 0x7),
        0xFEC: 0x00,
        0xFF0: 0x0D,
        0xFF4: component_class << 4,
        0xFF8: 0x05,
        0xFFC: 0xB1,
    }


def _rom_entry(component_base: int) -> int:
    """A present, 32-bit-format ROM table entry pointing at ``component_base``."""
    return ((component_base - ROM_TABLE_BASE) & 0xFFFFF000) | 0x3


def rom_table() -> RegisterFile:
    """The ROM table listing the SCS, DWT and FPB (read-only)."""
    values = _id_registers(0x4C3, CLASS_ROM_TABLE)
    values.update({0x000: _rom_entry(0xE000E000), 0x004: _rom_entry(DWT_BASE),
                   0x008: _rom_entry(FPB_BASE), 0x00C: 0, 0xFCC: 0x1})
    return RegisterFile(values, read_only=frozenset(values) | {0x00C})


def dwt(comparators: int = 4) -> RegisterFile:
    """Data Watchpoint and Trace unit with ``comparators`` comparators."""
    values = _id_registers(0x002, CLASS_GENERIC)
    values[0x000] = comparators << 28
    return RegisterFile(values, read_only=frozenset(_id_registers(0x002, CLASS_GENERIC)))


class Fpb(RegisterFile):
    """Flash Patch and Breakpoint unit (v1): FP_CTRL reports 6 code and 2 literal comparators."""

    NUM_CODE = 6
    NUM_LIT = 2

    def __init__(self) -> None:
        values = _id_registers(0x003, CLASS_GENERIC)
        values[0x000] = (self.NUM_LIT << 8) | (self.NUM_CODE << 4)
        super().__init__(values, read_only=frozenset(_id_registers(0x003, CLASS_GENERIC)))

    def write(self, offset: int, size: int, value: int) -> None:
        """FP_CTRL writes take effect only with KEY (bit 1) set; only ENABLE is writable."""
        if offset & ~3 == 0:
            if value & 0x2:
                ctrl = self.read(0, 4)
                super().write(0, 4, (ctrl & ~1) | (value & 1))
            return
        super().write(offset, size, value)


def attach_debug_components(bus: Bus) -> None:
    """Map the ROM table, DWT and FPB on the private peripheral bus."""
    bus.attach(ROM_TABLE_BASE, 0x1000, rom_table())
    bus.attach(DWT_BASE, 0x1000, dwt())
    bus.attach(FPB_BASE, 0x1000, Fpb())
