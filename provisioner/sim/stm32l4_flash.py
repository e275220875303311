"""The STM32L4 flash memory and its registers (RM0394 §3.3-3.7): double words, OPTR, OBL_LAUNCH."""

from __future__ import annotations

from collections.abc import Callable

from provisioner.sim.bus import BusFault, PowerRail, RegisterFile
from provisioner.sim.cortex_m import CortexM
from provisioner.sim.flash_cells import (
    FlashCells,
    lane,
    map_dbgmcu,
    map_read_only,
    wire_main_flash,
)
from provisioner.sim.stm32_fpec import KEY1, KEY2
from provisioner.sim.stm32f4_flash import OPTKEY1, OPTKEY2

FLASH_REGS = 0x40022000
ACR, KEYR, OPTKEYR, SR, CR, OPTR = 0x00, 0x08, 0x0C, 0x10, 0x14, 0x20
SR_EOP, SR_PROGERR, SR_WRPERR, SR_PGAERR, SR_SIZERR, SR_PGSERR = (
    1 << 0, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7)
SR_CLEARABLE = 0xC3FB
CR_PG, CR_PER, CR_MER1, CR_STRT, CR_OPTSTRT = 1 << 0, 1 << 1, 1 << 2, 1 << 16, 1 << 17
CR_OBL_LAUNCH, CR_OPTLOCK, CR_LOCK = 1 << 27, 1 << 30, 1 << 31
CR_PNB_SHIFT, CR_PNB_MASK = 3, 0xFF
RDP_LEVEL0 = 0xAA
DEFAULT_OPTR = 0xFFEFF8AA  # factory user option bytes: RDP level 0
INFO_BASE = 0x1FFF7000
FLASH_SIZE_OFFSET = 0x5E0


def default_option_register() -> bytearray:
    """Factory option bytes as the four FLASH_OPTR bytes (little-endian)."""
    return bytearray(DEFAULT_OPTR.to_bytes(4, "little"))


class Stm32L4Flash:
    """Main flash in 2 KiB pages (aliased at 0x0), FLASH_KEYR/SR/CR/OPTR and the UID page."""

    def __init__(self, core: CortexM, *, base: int, size_bytes: int, page_size_bytes: int,
                 chip_uid: bytes, uid_address: int, option_bytes: bytearray, content: bytes,
                 dev_id: int, power: PowerRail) -> None:
        self.base = base
        self.size_bytes = size_bytes
        self.page_size_bytes = page_size_bytes
        self.option_bytes = option_bytes
        self.power = power
        self.cells = FlashCells(content)
        self.memory = self.cells.memory
        self._system_reset: Callable[[], None] = core.reset
        self._sr = 0
        self._cr = CR_LOCK | CR_OPTLOCK
        self._optr = 0
        self._stages = {KEYR: 0, OPTKEYR: 0}
        self._half: tuple[int, int] | None = None  # first word of a double word in flight
        self._loaded_rdp = RDP_LEVEL0
        self._acr = RegisterFile({0: 0x600})
        info = bytearray(0x1000)
        uid_at = uid_address - INFO_BASE
        info[uid_at:uid_at + len(chip_uid)] = chip_uid
        kib = (size_bytes // 1024).to_bytes(2, "little")
        info[FLASH_SIZE_OFFSET:FLASH_SIZE_OFFSET + 2] = kib
        self.reset()
        wire_main_flash(core, self, self.cells, (base, 0x0))
        core.map_mmio(FLASH_REGS, 0x1000, self)
        core.bus.attach(FLASH_REGS, 0x400, self)
        map_read_only(core, INFO_BASE, info)
        map_dbgmcu(core, 0x10000000 | dev_id)
        core.reset_listeners.append(self.reset)

    @property
    def readout_protected(self) -> bool:
        """Whether the option bytes loaded at the last reset or OBL_LAUNCH set RDP 1 or 2."""
        return self._loaded_rdp != RDP_LEVEL0

    def reset(self) -> None:
        """System reset: lock the registers and load the option bytes into FLASH_OPTR."""
        self._sr = 0
        self._cr = CR_LOCK | CR_OPTLOCK
        self._stages = {KEYR: 0, OPTKEYR: 0}
        self._half = None
        self._optr = int.from_bytes(self.option_bytes, "little")
        self._loaded_rdp = self._optr & 0xFF

    # --- registers -----------------------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        """Read a flash register."""
        value = {ACR: self._acr.read(0, 4), SR: self._sr, CR: self._cr,
                 OPTR: self._optr}.get(offset & ~3, 0)
        return lane(value, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        """Write a flash register: keys, status clearing, control, options."""
        if offset == ACR:
            self._acr.write(0, 4, value)
        elif offset in (KEYR, OPTKEYR):
            self._key(offset, value)
        elif offset == SR:
            self._sr &= ~(value & SR_CLEARABLE)
        elif offset == CR and not self._cr & CR_LOCK:
            self._write_cr(value)
        elif offset == OPTR and not self._cr & CR_OPTLOCK:
            self._optr = value

    def _key(self, reg: int, value: int) -> None:
        keys = (KEY1, KEY2) if reg == KEYR else (OPTKEY1, OPTKEY2)
        stage = self._stages[reg]
        if value != keys[stage] or (reg == OPTKEYR and self._cr & CR_LOCK):
            self._stages[reg] = 0
            raise BusFault(FLASH_REGS + reg, "wrong key sequence; locked until reset")
        self._stages[reg] = (stage + 1) % 2
        if stage == 1:
            self._cr &= ~(CR_LOCK if reg == KEYR else CR_OPTLOCK)

    def _write_cr(self, value: int) -> None:
        keep = self._cr & CR_OPTLOCK  # OPTLOCK can be set but only the key sequence clears it
        self._cr = (value & ~(CR_STRT | CR_OPTSTRT | CR_OBL_LAUNCH)) | keep
        if value & CR_STRT:
            self._erase()
        if value & CR_OPTSTRT and not self._cr & CR_OPTLOCK:
            self._commit_options()
        if value & CR_OBL_LAUNCH:
            self._system_reset()  # option byte loading resets the chip (RM0394 §3.4.2)

    def _erase(self) -> None:
        if self.readout_protected:  # RDP level 1 with a debugger attached (RM0394 §3.5.1)
            self._sr |= SR_WRPERR
            return
        if self._cr & CR_MER1:
            self.cells.erase()
        elif self._cr & CR_PER:
            page = (self._cr >> CR_PNB_SHIFT) & CR_PNB_MASK
            if page >= self.size_bytes // self.page_size_bytes:
                self._sr |= SR_WRPERR
                return
            start = page * self.page_size_bytes
            self.cells.erase(start, self.page_size_bytes)
        self._sr |= SR_EOP

    def _commit_options(self) -> None:
        """OPTSTRT: store FLASH_OPTR; going from RDP level 1 to level 0 mass-erases first."""
        if self.option_bytes[0] != RDP_LEVEL0 and self._optr & 0xFF == RDP_LEVEL0:
            self.cells.erase()
        self.option_bytes[:] = self._optr.to_bytes(4, "little")
        self._sr |= SR_EOP

    # --- programming: 64-bit double words (RM0394 §3.3.7) -------------------------------------

    def program(self, offset: int, size: int, value: int) -> None:
        """A 32-bit write into flash with PG set; every second one programs a double word."""
        if not self._cr & CR_PG:
            self._sr |= SR_PGSERR
            return
        if size != 4:
            self._sr |= SR_SIZERR
            return
        if self._half is None:
            if offset % 8:
                self._sr |= SR_PGAERR
                return
            self._half = (offset, value)
            return
        first_offset, first = self._half
        self._half = None
        if offset != first_offset + 4:
            self._sr |= SR_PGAERR
            return
        double = first | value << 32
        current = int.from_bytes(self.memory[first_offset:first_offset + 8], "little")
        if current != (1 << 64) - 1 and double != 0:
            self._sr |= SR_PROGERR
            return
        if self.readout_protected:
            self._sr |= SR_WRPERR
            return
        if not self.power.consume(8):
            return
        self.memory[first_offset:first_offset + 8] = double.to_bytes(8, "little")
        self._sr |= SR_EOP
