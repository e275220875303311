"""The STM32F1 flash memory and its controller (FPEC), per RM0008 §3 and PM0075 §2-3."""

from __future__ import annotations

from provisioner.sim.bus import BusFault, PowerRail, RegisterFile
from provisioner.sim.cortex_m import CortexM
from provisioner.sim.flash_cells import FlashCells, lane, map_dbgmcu, wire_main_flash

FPEC_BASE = 0x40022000
INFO_BASE = 0x1FFFF000  # system memory page holding F_SIZE, the UID and the option bytes
OPTION_BYTES = 0x1FFFF800
OPTION_BYTES_SIZE = 16
FLASH_SIZE_REGISTER = 0x1FFFF7E0
RDP_UNPROTECTED = 0xA5
KEY1 = 0x45670123
KEY2 = 0xCDEF89AB

ACR, KEYR, OPTKEYR, SR, CR, AR, OBR, WRPR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x1C, 0x20
SR_BSY, SR_PGERR, SR_WRPRTERR, SR_EOP = 1 << 0, 1 << 2, 1 << 4, 1 << 5
CR_PG, CR_PER, CR_MER, CR_OPTPG, CR_OPTER, CR_STRT, CR_LOCK, CR_OPTWRE = (
    1 << 0, 1 << 1, 1 << 2, 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 9)
OBR_OPTERR, OBR_RDPRT = 1 << 0, 1 << 1
RDP_PROTECTED_PAGES = 4  # pages 0-3 are write protected while RDP is active


def default_option_bytes() -> bytearray:
    """Factory option bytes: RDP unprotected (0xA5), everything else erased, complements set."""
    values = [RDP_UNPROTECTED, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
    return bytearray(b for value in values for b in (value, value ^ 0xFF))


class Stm32F1Flash:
    """Main flash (aliased at 0x0), the FPEC registers, the option bytes and the UID page."""

    def __init__(self, core: CortexM, *, base: int, size_bytes: int, page_size_bytes: int,
                 chip_uid: bytes, uid_address: int, option_bytes: bytearray,
                 content: bytes, dev_id: int, power: PowerRail) -> None:
        self.base = base
        self.size_bytes = size_bytes
        self.page_size_bytes = page_size_bytes
        self.option_bytes = option_bytes
        self.power = power
        self.cells = FlashCells(content)
        self.memory = self.cells.memory
        self._sr = 0
        self._cr = CR_LOCK
        self._ar = 0
        self._key_stage = 0
        self._opt_key_stage = 0
        self._keys_burned = False
        self.obr = 0
        self.wrpr = 0xFFFFFFFF
        self.info = bytearray(0x1000)
        size_at = FLASH_SIZE_REGISTER - INFO_BASE
        self.info[size_at:size_at + 2] = (size_bytes // 1024).to_bytes(2, "little")
        uid_at = uid_address - INFO_BASE
        self.info[uid_at:uid_at + len(chip_uid)] = chip_uid
        self._acr = RegisterFile({ACR: 0x30})
        self.load_option_bytes()
        self._wire(core, dev_id)

    def _wire(self, core: CortexM, dev_id: int) -> None:
        wire_main_flash(core, self, self.cells, (self.base, 0x0))
        core.map_mmio(FPEC_BASE, 0x1000, self)
        core.bus.attach(FPEC_BASE, 0x400, self)
        info = _InfoPage(self)
        core.map_mmio(INFO_BASE, 0x1000, info)
        core.bus.attach(INFO_BASE, 0x1000, info)
        map_dbgmcu(core, 0x20030000 | dev_id)
        core.reset_listeners.append(self.reset)

    # --- state -----------------------------------------------------------------------------

    @property
    def readout_protected(self) -> bool:
        """Whether the loaded option bytes (OBR.RDPRT) protect the flash."""
        return bool(self.obr & OBR_RDPRT)

    def load_option_bytes(self) -> None:
        """Option byte loader (RM0008 §3.4.6): a byte whose complement mismatches loads as 0xFF
        and sets OPTERR; RDP other than 0xA5 activates readout protection."""
        ob = self.option_bytes
        pairs_ok = [ob[i] ^ ob[i + 1] == 0xFF for i in range(0, OPTION_BYTES_SIZE, 2)]
        loaded = [ob[2 * n] if ok else 0xFF for n, ok in enumerate(pairs_ok)]
        self.obr = 0 if all(pairs_ok) else OBR_OPTERR
        self.obr |= OBR_RDPRT if loaded[0] != RDP_UNPROTECTED else 0
        self.obr |= loaded[1] << 2 | loaded[2] << 10 | loaded[3] << 18
        self.wrpr = int.from_bytes(bytes(loaded[4:8]), "little")

    def reset(self) -> None:
        """System reset: relock the FPEC, clear its status and reload the option bytes."""
        self._sr = 0
        self._cr = CR_LOCK
        self._key_stage = self._opt_key_stage = 0
        self._keys_burned = False
        self.load_option_bytes()

    # --- FPEC registers (RM0008 §3.4) ---------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        """Read an FPEC register."""
        word = offset & ~3
        value = {SR: self._sr, CR: self._cr, AR: self._ar, OBR: self.obr,
                 WRPR: self.wrpr}.get(word)
        if value is None:
            return self._acr.read(offset, size) if word == ACR else 0
        return lane(value, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        """Write an FPEC register: key sequences, status clearing, control and address."""
        word = offset & ~3
        if word == ACR:
            self._acr.write(offset, size, value)
        elif word == KEYR:
            self._unlock(value)
        elif word == OPTKEYR:
            self._unlock_options(value)
        elif word == SR:
            self._sr &= ~(value & (SR_PGERR | SR_WRPRTERR | SR_EOP))
        elif word == AR:
            self._ar = value
        elif word == CR:
            self._write_cr(value)

    def _unlock(self, value: int) -> None:
        if self._keys_burned or not self._cr & CR_LOCK:
            self._keys_burned = True
            raise BusFault(FPEC_BASE + KEYR, "FLASH_KEYR written out of sequence; locked")
        if self._key_stage == 0 and value == KEY1:
            self._key_stage = 1
        elif self._key_stage == 1 and value == KEY2:
            self._cr &= ~CR_LOCK
            self._key_stage = 0
        else:
            self._keys_burned = True
            raise BusFault(FPEC_BASE + KEYR, "wrong FLASH_KEYR sequence; locked until reset")

    def _unlock_options(self, value: int) -> None:
        if self._opt_key_stage == 0 and value == KEY1:
            self._opt_key_stage = 1
        elif self._opt_key_stage == 1 and value == KEY2 and not self._cr & CR_LOCK:
            self._cr |= CR_OPTWRE
            self._opt_key_stage = 0
        else:
            self._opt_key_stage = 0

    def _write_cr(self, value: int) -> None:
        if self._cr & CR_LOCK:
            return
        keep_optwre = self._cr & CR_OPTWRE and value & CR_OPTWRE
        self._cr = (value & ~(CR_STRT | CR_OPTWRE)) | (CR_OPTWRE if keep_optwre else 0)
        if value & CR_STRT:
            self._start()

    def _start(self) -> None:
        """STRT: erase now (the operation completes at once, so STRT and BSY self-clear)."""
        if self._cr & CR_MER:
            if self.readout_protected:
                self._sr |= SR_WRPRTERR
                return
            self.cells.erase()
        elif self._cr & CR_PER:
            page = (self._ar - self.base) // self.page_size_bytes
            if not 0 <= page < self.size_bytes // self.page_size_bytes or self._page_locked(page):
                self._sr |= SR_WRPRTERR
                return
            start = page * self.page_size_bytes
            self.cells.erase(start, self.page_size_bytes)
        elif self._cr & CR_OPTER and self._cr & CR_OPTWRE:
            if self.readout_protected:  # RDP removal: the main flash is mass-erased first
                self.cells.erase()
            self.option_bytes[:] = b"\xff" * OPTION_BYTES_SIZE
        self._sr |= SR_EOP

    def _page_locked(self, page: int) -> bool:
        group = min(page // 4, 31)
        rdp_lock = self.readout_protected and page < RDP_PROTECTED_PAGES
        return rdp_lock or not (self.wrpr >> group) & 1

    # --- programming ------------------------------------------------------------------------

    def program(self, offset: int, size: int, value: int) -> None:
        """A write into main flash: programs half-words while PG is set (PM0075 §2.3.3)."""
        if not self._cr & CR_PG or size == 1:
            self._sr |= SR_PGERR
            return
        for part in range(size // 2):
            self._program_halfword(offset + 2 * part, (value >> (16 * part)) & 0xFFFF)

    def _program_halfword(self, offset: int, halfword: int) -> None:
        if not self.power.consume(2):
            return
        if self._page_locked(offset // self.page_size_bytes):
            self._sr |= SR_WRPRTERR
            return
        current = self.memory[offset] | self.memory[offset + 1] << 8
        if current != 0xFFFF and halfword != 0:
            self._sr |= SR_PGERR
            return
        self.memory[offset:offset + 2] = halfword.to_bytes(2, "little")
        self._sr |= SR_EOP

    def program_option(self, offset: int, size: int, value: int) -> None:
        """A half-word write into the option bytes while OPTPG and OPTWRE are set."""
        if not (self._cr & CR_OPTPG and self._cr & CR_OPTWRE) or size != 2 or offset & 1:
            self._sr |= SR_PGERR
            return
        if self.option_bytes[offset] != 0xFF:
            self._sr |= SR_PGERR
            return
        data = value & 0xFF
        self.option_bytes[offset:offset + 2] = bytes((data, data ^ 0xFF))
        self._sr |= SR_EOP


class _InfoPage:
    """System memory page: F_SIZE and UID read-only, option bytes programmed through the FPEC."""

    def __init__(self, flash: Stm32F1Flash) -> None:
        self._flash = flash

    def read(self, offset: int, size: int) -> int:
        option_offset = offset - (OPTION_BYTES - INFO_BASE)
        if 0 <= option_offset < OPTION_BYTES_SIZE:
            raw = self._flash.option_bytes[option_offset:option_offset + size]
        else:
            raw = self._flash.info[offset:offset + size]
        return int.from_bytes(raw, "little")

    def write(self, offset: int, size: int, value: int) -> None:
        option_offset = offset - (OPTION_BYTES - INFO_BASE)
        if 0 <= option_offset < OPTION_BYTES_SIZE:
            self._flash.program_option(option_offset, size, value)
        else:
            raise BusFault(INFO_BASE + offset, "system memory is read-only")
