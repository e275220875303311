"""The STM32F4 flash memory and its interface registers (RM0090 §3.5-3.9): sectors, PSIZE, OPTCR."""

from __future__ import annotations

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

FLASH_PAGE = 0x40023000  # the 4 KiB page holding the flash interface at 0x40023C00
FLASH_IF = 0xC00
ACR, KEYR, OPTKEYR, SR, CR, OPTCR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14
OPTKEY1, OPTKEY2 = 0x08192A3B, 0x4C5D6E7F
SR_EOP, SR_WRPERR, SR_PGAERR, SR_PGPERR, SR_PGSERR = 1 << 0, 1 << 4, 1 << 5, 1 << 6, 1 << 7
SR_ERRORS = SR_WRPERR | SR_PGAERR | SR_PGPERR | SR_PGSERR
CR_PG, CR_SER, CR_MER, CR_STRT, CR_LOCK = 1 << 0, 1 << 1, 1 << 2, 1 << 16, 1 << 31
CR_SNB_SHIFT, CR_PSIZE_SHIFT = 3, 8
OPTCR_OPTLOCK, OPTCR_OPTSTRT = 1 << 0, 1 << 1
RDP_LEVEL0 = 0xAA
DEFAULT_OPTCR = 0x0FFFAAEC  # factory option word: RDP level 0, no write protection
INFO_BASE = 0x1FFF7000
FLASH_SIZE_OFFSET = 0xA22


def default_option_word() -> bytearray:
    """Factory option bytes as the four OPTCR bytes (little-endian, control bits clear)."""
    return bytearray(DEFAULT_OPTCR.to_bytes(4, "little"))


class Stm32F4Flash:
    """Main flash in sectors (aliased at 0x0), FLASH_KEYR/SR/CR/OPTCR and the UID page."""

    def __init__(self, core: CortexM, *, base: int, size_bytes: int,
                 sectors: tuple[tuple[int, int], ...], chip_uid: bytes, uid_address: int,
                 option_bytes: bytearray, content: bytes, dev_id: int,
                 power: PowerRail) -> None:
        self.base = base
        self.power = power
        self.size_bytes = size_bytes
        self.sectors = sectors
        self.option_bytes = option_bytes
        self.cells = FlashCells(content)
        self.memory = self.cells.memory
        self._sr = 0
        self._cr = CR_LOCK
        self._optcr = 0
        self._stages = {KEYR: 0, OPTKEYR: 0}
        self._loaded_rdp = RDP_LEVEL0
        self.info = bytearray(0x1000)
        uid_at = uid_address - INFO_BASE
        self.info[uid_at:uid_at + len(chip_uid)] = chip_uid
        kib = (size_bytes // 1024).to_bytes(2, "little")
        self.info[FLASH_SIZE_OFFSET:FLASH_SIZE_OFFSET + 2] = kib
        self._acr = RegisterFile()
        self.reset()
        self._wire(core, dev_id)

    def _wire(self, core: CortexM, dev_id: int) -> None:
        wire_main_flash(core, self, self.cells, (self.base, 0x0))
        core.map_device(FLASH_PAGE, 0x1000, self)
        map_read_only(core, INFO_BASE, self.info)
        map_dbgmcu(core, 0x10000000 | dev_id)
        core.reset_listeners.append(self.reset)

    @property
    def readout_protected(self) -> bool:
        """Whether the option bytes loaded at the last reset set RDP level 1 or 2."""
        return self._loaded_rdp != RDP_LEVEL0

    def reset(self) -> None:
        """System reset: lock the interface and load the option bytes into OPTCR."""
        self._sr = 0
        self._cr = CR_LOCK
        self._stages = {KEYR: 0, OPTKEYR: 0}
        option_word = int.from_bytes(self.option_bytes, "little")
        self._optcr = option_word | OPTCR_OPTLOCK
        self._loaded_rdp = (option_word >> 8) & 0xFF

    # --- registers -----------------------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        """Read a flash interface register (the rest of the page reads as zero)."""
        reg = offset - FLASH_IF
        value = {ACR: self._acr.read(0, 4), SR: self._sr, CR: self._cr,
                 OPTCR: self._optcr}.get(reg & ~3, 0)
        return lane(value, reg, size)

    def write(self, offset: int, size: int, value: int) -> None:
        """Write a flash interface register."""
        reg = offset - FLASH_IF
        if reg == ACR:
            self._acr.write(0, 4, value)
        elif reg in (KEYR, OPTKEYR):
            self._key(reg, value)
        elif reg == SR:
            self._sr &= ~(value & (SR_EOP | SR_ERRORS))
        elif reg == CR and not self._cr & CR_LOCK:
            self._cr = value & ~CR_STRT
            if value & CR_STRT:
                self._erase()
        elif reg == OPTCR and not self._optcr & OPTCR_OPTLOCK:
            self._optcr = value & ~OPTCR_OPTSTRT
            if value & OPTCR_OPTSTRT:
                self._commit_options()

    def _key(self, reg: int, value: int) -> None:
        keys = (KEY1, KEY2) if reg == KEYR else (OPTKEY1, OPTKEY2)
        stage = self._stages[reg]
        if value != keys[stage]:
            self._stages[reg] = 0
            if reg == KEYR:  # a wrong key locks FLASH_CR until the next reset
                self._cr |= CR_LOCK
                raise BusFault(FLASH_PAGE + offset_of(reg), "wrong FLASH_KEYR sequence")
            return
        self._stages[reg] = stage + 1
        if stage == 1:
            self._stages[reg] = 0
            if reg == KEYR:
                self._cr &= ~CR_LOCK
            else:
                self._optcr &= ~OPTCR_OPTLOCK

    def _erase(self) -> None:
        if self.readout_protected:  # RDP level 1 with a debugger attached (RM0090 §3.7.3)
            self._sr |= SR_WRPERR
            return
        if self._cr & CR_MER:
            self.cells.erase()
        elif self._cr & CR_SER:
            number = (self._cr >> CR_SNB_SHIFT) & 0xF
            if number >= len(self.sectors):
                self._sr |= SR_WRPERR
                return
            start, size = self.sectors[number]
            offset = start - self.base
            self.cells.erase(offset, size)
        self._sr |= SR_EOP

    def _commit_options(self) -> None:
        """OPTSTRT: store OPTCR as the option bytes; leaving RDP level 1 mass-erases first."""
        new_rdp = (self._optcr >> 8) & 0xFF
        old_rdp = self.option_bytes[1]
        if old_rdp != RDP_LEVEL0 and new_rdp == RDP_LEVEL0:
            self.cells.erase()
        word = self._optcr & ~(OPTCR_OPTLOCK | OPTCR_OPTSTRT)
        self.option_bytes[:] = word.to_bytes(4, "little")
        self._sr |= SR_EOP

    # --- programming ---------------------------------------------------------------------------

    def program(self, offset: int, size: int, value: int) -> None:
        """A write into main flash while PG is set: its size must match CR.PSIZE (PGPERR)."""
        if not self._cr & CR_PG:
            self._sr |= SR_PGSERR
            return
        if size != 1 << ((self._cr >> CR_PSIZE_SHIFT) & 0x3):
            self._sr |= SR_PGPERR
            return
        if offset % size:
            self._sr |= SR_PGAERR
            return
        if self.readout_protected:
            self._sr |= SR_WRPERR
            return
        if not self.power.consume(size):
            return
        old = int.from_bytes(self.memory[offset:offset + size], "little")
        self.memory[offset:offset + size] = (old & value).to_bytes(size, "little")
        self._sr |= SR_EOP


def offset_of(reg: int) -> int:
    """Offset of a flash interface register inside the 4 KiB page mapped at FLASH_PAGE."""
    return FLASH_IF + reg
