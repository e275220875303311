"""A unicorn-emulated Cortex-M core with its debug registers (ARMv7-M ARM §C1.6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import unicorn
from unicorn import arm_const
from unicorn.unicorn_py3.unicorn import Uc, UcError

from provisioner.sim.bus import Bus, BusFault, Device, RegisterFile
from provisioner.sim.systick import SysTick

SCS_BASE = 0xE000E000
CPUID = 0xD00
AIRCR = 0xD0C
DFSR = 0xD30
DHCSR = 0xDF0
DCRSR = 0xDF4
DCRDR = 0xDF8
DEMCR = 0xDFC
SYSTICK = 0x010  # SysTick CSR..CALIB at 0xE000E010
VTOR = 0xD08

DBGKEY = 0xA05F
VECTKEY = 0x05FA
C_DEBUGEN = 1 << 0
C_HALT = 1 << 1
C_STEP = 1 << 2
C_MASKINTS = 1 << 3
S_REGRDY = 1 << 16
S_HALT = 1 << 17
S_LOCKUP = 1 << 19
S_RETIRE_ST = 1 << 24
S_RESET_ST = 1 << 25
DFSR_HALTED = 1 << 0
DFSR_BKPT = 1 << 1
DFSR_VCATCH = 1 << 3
VC_CORERESET = 1 << 0
AIRCR_VECTRESET = 1 << 0
AIRCR_SYSRESETREQ = 1 << 2
EXCP_BKPT = 7  # QEMU's exception number for BKPT, delivered through the interrupt hook

# DCRSR REGSEL → unicorn register (ARMv7-M ARM Table C1-4)
_CORE_REGS: dict[int, int] = {
    **{n: getattr(arm_const, f"UC_ARM_REG_R{n}") for n in range(13)},
    13: arm_const.UC_ARM_REG_SP,
    14: arm_const.UC_ARM_REG_LR,
    15: arm_const.UC_ARM_REG_PC,
    16: arm_const.UC_ARM_REG_XPSR,
    17: arm_const.UC_ARM_REG_MSP,
    18: arm_const.UC_ARM_REG_PSP,
}
_CFBP = 20  # CONTROL[31:24] FAULTMASK[23:16] BASEPRI[15:8] PRIMASK[7:0]
_CFBP_REGS = (
    (24, arm_const.UC_ARM_REG_CONTROL),
    (16, arm_const.UC_ARM_REG_FAULTMASK),
    (8, arm_const.UC_ARM_REG_BASEPRI),
    (0, arm_const.UC_ARM_REG_PRIMASK),
)
SLICE_INSTRUCTIONS = 200_000


class CortexM:
    """One core: unicorn executes, the SCS device answers the debugger, the bus serves both."""

    def __init__(self, bus: Bus, *, cpuid: int, cpu_model: int) -> None:
        self.bus = bus
        self.uc: Any = Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(cpu_model)
        self.uc.hook_add(unicorn.UC_HOOK_INTR, self._on_interrupt)
        self.halted = True
        self.locked_up = False
        self.control = C_DEBUGEN | C_HALT
        self.dfsr = DFSR_HALTED
        self.demcr = 0
        self.dcrdr = 0
        self.reset_sticky = False
        self.retired = False
        self.reset_listeners: list[Callable[[], None]] = []
        self._pending: list[tuple[memoryview, int, bytes]] = []
        self.systick = SysTick()
        self.reset_listeners.append(self.systick.reset)
        self.scs = _Scs(self, cpuid)
        bus.attach(SCS_BASE, 0x1000, self.scs)
        self.vtor = 0
        self.reset_requested = False
        self.map_mmio(SCS_BASE, 0x1000, _CoreScs(self, cpuid))

    # --- memory wiring ---------------------------------------------------------------------

    def map_ram(self, base: int, size_bytes: int) -> None:
        """Give the core read/write RAM and let the debugger reach it."""
        self.uc.mem_map(base, size_bytes, unicorn.UC_PROT_ALL)
        self.bus.attach(base, size_bytes, _UnicornMemory(self.uc, base))

    def map_mmio(self, base: int, size_bytes: int, device: Device) -> None:
        """Route the core's accesses in ``[base, base+size)`` to ``device`` (callbacks)."""

        def read(uc: Any, offset: int, size: int, user_data: Any) -> int:
            self.settle_writes()
            try:
                return device.read(offset, size)
            except BusFault:
                return 0

        def write(uc: Any, offset: int, size: int, value: int, user_data: Any) -> None:
            self.settle_writes()
            try:
                device.write(offset, size, value)
            except BusFault:
                return

        self.uc.mmio_map(base, size_bytes, read, None, write, None)

    def map_device(self, base: int, size_bytes: int, device: Device) -> None:
        """Make ``device`` reachable from both the core and the debugger."""
        self.map_mmio(base, size_bytes, device)
        self.bus.attach(base, size_bytes, device)

    def map_flash(self, bases: tuple[int, ...], memory: memoryview, pointer: int,
                  program: Callable[[int, int, int], None]) -> None:
        """Map ``memory`` at each base; the core's stores go through ``program(offset, size,
        value)`` (the flash controller decides what the cells become).

        unicorn stores the raw value after a write hook returns, whatever the hook did, so the
        hook records what the controller left in the cells and ``settle_writes`` puts it back
        before anything can observe the raw value: at the next flash store, peripheral access
        or the end of the slice (the way real flash only changes through its controller).
        """
        size = len(memory)

        def on_write(uc: Any, access: int, address: int, width: int, value: int,
                     base: int) -> None:
            self.settle_writes()
            offset = address - base
            program(offset, width, value & ((1 << (8 * width)) - 1))
            self._pending.append((memory, offset, bytes(memory[offset:offset + width])))

        for base in bases:
            self.uc.mem_map_ptr(base, size, unicorn.UC_PROT_ALL, pointer)
            self.uc.hook_add(unicorn.UC_HOOK_MEM_WRITE, on_write, base, base, base + size - 1)

    def settle_writes(self) -> None:
        """Restore flash cells to what the controller programmed (see ``map_flash``)."""
        for memory, offset, cells in self._pending:
            memory[offset:offset + len(cells)] = cells
        self._pending.clear()

    # --- execution -------------------------------------------------------------------------

    def _on_interrupt(self, uc: Any, intno: int, user_data: Any) -> None:
        if intno == EXCP_BKPT:
            self.dfsr |= DFSR_BKPT
            self._enter_halt()
        else:
            self.locked_up = True
        uc.emu_stop()

    def _enter_halt(self) -> None:
        self.halted = True
        self.control |= C_HALT

    def run_slice(self, instructions: int = SLICE_INSTRUCTIONS) -> None:
        """Run the core for up to ``instructions`` unless halted or locked up."""
        if self.halted or self.locked_up:
            return
        pc = self.uc.reg_read(arm_const.UC_ARM_REG_PC)
        try:
            self.uc.emu_start(pc | 1, 0xFFFFFFFF, 0, instructions)
        except UcError:
            self.locked_up = True
        finally:
            self.settle_writes()
        self.retired = True
        if self.reset_requested:  # SYSRESETREQ from the firmware: reset between slices
            self.reset_requested = False
            self.reset()

    def step(self) -> None:
        """Execute one instruction and halt again."""
        self.halted = False
        self.run_slice(1)
        self._enter_halt()
        self.dfsr |= DFSR_HALTED

    def halt(self) -> None:
        """Stop the core at a debug request (C_HALT reads 1 while halted)."""
        if not self.halted:
            self.dfsr |= DFSR_HALTED
        self._enter_halt()
        self.locked_up = False

    def resume(self) -> None:
        """Let the core run; the first slice runs at once."""
        self.halted = False
        self.control &= ~C_HALT
        self.run_slice()

    def reset(self) -> None:
        """System reset: peripherals first (option bytes reload), then SP/PC from the vectors."""
        for listener in self.reset_listeners:
            listener()
        self.vtor = 0
        sp = self._vector(0)
        pc = self._vector(4)
        self.uc.reg_write(arm_const.UC_ARM_REG_MSP, sp & ~3)
        self.uc.reg_write(arm_const.UC_ARM_REG_SP, sp & ~3)
        self.uc.reg_write(arm_const.UC_ARM_REG_XPSR, 0x01000000)
        self.uc.reg_write(arm_const.UC_ARM_REG_PC, pc & ~1)
        self.reset_sticky = True
        self.locked_up = (pc & 1) == 0 or pc == 0xFFFFFFFF
        if self.demcr & VC_CORERESET and self.control & C_DEBUGEN:
            self._enter_halt()
            self.dfsr |= DFSR_VCATCH
        else:
            self.halted = False
            self.control &= ~C_HALT

    def _vector(self, offset: int) -> int:
        """A vector-table word as the core fetches it (not through the debugger's view)."""
        try:
            return int.from_bytes(self.uc.mem_read(offset, 4), "little")
        except UcError:
            return 0xFFFFFFFF

    # --- core registers through DCRSR/DCRDR ---------------------------------------------------

    def transfer_register(self, dcrsr: int) -> None:
        """Move DCRDR to/from the register DCRSR selects (only while halted)."""
        regsel = dcrsr & 0x7F
        write = bool(dcrsr & (1 << 16))
        if regsel == _CFBP:
            if write:
                for shift, reg in _CFBP_REGS:
                    self.uc.reg_write(reg, (self.dcrdr >> shift) & 0xFF)
            else:
                self.dcrdr = sum(
                    (self.uc.reg_read(reg) & 0xFF) << shift for shift, reg in _CFBP_REGS
                )
            return
        selected = _CORE_REGS.get(regsel)
        if selected is None:
            if not write:
                self.dcrdr = 0
            return
        if write:
            value = self.dcrdr & ~1 if regsel == 15 else self.dcrdr
            self.uc.reg_write(selected, value)
        else:
            self.dcrdr = self.uc.reg_read(selected) & 0xFFFFFFFF


class _UnicornMemory:
    """The debugger's view of memory that unicorn owns (RAM)."""

    def __init__(self, uc: Any, base: int) -> None:
        self._uc = uc
        self._base = base

    def read(self, offset: int, size: int) -> int:
        return int.from_bytes(self._uc.mem_read(self._base + offset, size), "little")

    def write(self, offset: int, size: int, value: int) -> None:
        self._uc.mem_write(self._base + offset, value.to_bytes(size, "little"))


class _CoreScs:
    """The SCS as the core's own code sees it: CPUID, VTOR, SysTick, AIRCR reset requests.

    VTOR is kept for the firmware to read back; the emulated core takes no exceptions, so
    nothing fetches vectors through it.
    """

    def __init__(self, core: CortexM, cpuid: int) -> None:
        self._core = core
        self._cpuid = cpuid

    def read(self, offset: int, size: int) -> int:
        word = offset & ~3
        if SYSTICK <= word < SYSTICK + 0x10:
            return self._core.systick.read(offset - SYSTICK, size)
        if word == CPUID:
            return self._cpuid
        if word == VTOR:
            return self._core.vtor
        if word == AIRCR:
            return 0xFA050000
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        core = self._core
        word = offset & ~3
        if SYSTICK <= word < SYSTICK + 0x10:
            core.systick.write(offset - SYSTICK, size, value)
        elif word == VTOR:
            core.vtor = value & 0xFFFFFF80
        elif word == AIRCR and value >> 16 == VECTKEY and value & AIRCR_SYSRESETREQ:
            core.reset_requested = True
            core.uc.emu_stop()


class _Scs:
    """System Control Space: debug control (DHCSR, DCRSR, DCRDR, DEMCR, DFSR) and AIRCR reset."""

    def __init__(self, core: CortexM, cpuid: int) -> None:
        self._core = core
        self._regs = RegisterFile({CPUID: cpuid}, read_only=frozenset({CPUID}))
        self._regs.write(0xFD0, 4, 0x04)  # PIDR4: Arm JEP106 continuation 4
        for offset, value in ((0xFE0, 0x00), (0xFE4, 0xB0), (0xFE8, 0x0B), (0xFF0, 0x0D),
                              (0xFF4, 0xE0), (0xFF8, 0x05), (0xFFC, 0xB1)):
            self._regs.write(offset, 4, value)  # SCS: part 0x000, class 0xE (generic IP)

    def read(self, offset: int, size: int) -> int:
        core = self._core
        word = offset & ~3
        if SYSTICK <= word < SYSTICK + 0x10:
            return core.systick.read(offset - SYSTICK, size)
        if word == DHCSR:
            if not core.halted:
                core.run_slice()
            value = (core.control & 0x2F) | S_REGRDY
            value |= S_HALT if core.halted else 0
            value |= S_LOCKUP if core.locked_up and not core.halted else 0
            value |= S_RETIRE_ST if core.retired else 0
            value |= S_RESET_ST if core.reset_sticky else 0
            core.reset_sticky = False
            core.retired = False
            return value
        if word == DFSR:
            return core.dfsr
        if word == DCRDR:
            return core.dcrdr
        if word == DEMCR:
            return core.demcr
        if word == AIRCR:
            return 0xFA050000
        return self._regs.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        core = self._core
        word = offset & ~3
        if SYSTICK <= word < SYSTICK + 0x10:
            core.systick.write(offset - SYSTICK, size, value)
        elif word == DHCSR:
            if value >> 16 == DBGKEY:
                self._write_dhcsr(value & 0xFFFF)
        elif word == DFSR:
            core.dfsr &= ~value
        elif word == DCRSR:
            core.transfer_register(value)
        elif word == DCRDR:
            core.dcrdr = value
        elif word == DEMCR:
            core.demcr = value
        elif word == AIRCR:
            if value >> 16 == VECTKEY and value & (AIRCR_SYSRESETREQ | AIRCR_VECTRESET):
                core.reset()
        else:
            self._regs.write(offset, size, value)

    def _write_dhcsr(self, bits: int) -> None:
        core = self._core
        core.control = bits & 0x2F
        if bits & C_DEBUGEN and bits & C_HALT:
            core.halt()
        elif core.halted and bits & C_DEBUGEN and bits & C_STEP:
            core.step()
        elif core.halted:
            core.resume()  # also when the debugger lets go (C_DEBUGEN cleared)
