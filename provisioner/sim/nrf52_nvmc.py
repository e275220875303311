"""The nRF52840 flash, UICR, FICR and their controller, the NVMC (nRF52840 PS v1.7 §4.3-4.5)."""

from __future__ import annotations

from provisioner.sim.bus import PowerRail, ReadAsZero
from provisioner.sim.cortex_m import CortexM
from provisioner.sim.flash_cells import FlashCells, lane, map_read_only, wire_main_flash

FICR_BASE = 0x10000000
UICR_BASE = 0x10001000
UICR_SIZE = 0x1000
NVMC_BASE = 0x4001E000
WDT_BASE = 0x40010000  # the flash algorithm feeds the watchdog while it waits
READY, READYNEXT, CONFIG = 0x400, 0x408, 0x504
ERASEPAGE, ERASEALL, ERASEPCR0, ERASEUICR = 0x508, 0x50C, 0x510, 0x514
ERASEPAGEPARTIAL = 0x518  # modelled as a whole page erase: erases complete at once
CONFIG_REN, CONFIG_WEN, CONFIG_EEN = 0, 1, 2
UICR_APPROTECT = 0x208
APPROTECT_DISABLED = 0xFF  # PALL field: 0xFF Disabled, anything else (0x00 Enabled) protects
# FICR: CODEPAGESIZE, CODESIZE, INFO.PART/VARIANT/PACKAGE/RAM/FLASH (PS §4.4)
FICR_CODEPAGESIZE, FICR_CODESIZE = 0x010, 0x014
FICR_PART, FICR_VARIANT, FICR_PACKAGE, FICR_RAM, FICR_FLASH = 0x100, 0x104, 0x108, 0x10C, 0x110
PART_NRF52840 = 0x52840
VARIANT_AAD0 = 0x41414430  # "AAD0": before hardened APPROTECT (build code F0)
PACKAGE_QI = 0x2004


def default_uicr() -> bytearray:
    """A factory UICR: every register erased (APPROTECT disabled)."""
    return bytearray(b"\xff" * UICR_SIZE)


def factory_ficr(*, chip_uid: bytes, uid_address: int, page_size_bytes: int,
                 flash_size_bytes: int, ram_size_bytes: int) -> bytearray:
    """FICR content with DEVICEID at ``uid_address`` and the part information pyOCD reads."""
    ficr = bytearray(b"\xff" * 0x1000)
    fields = {FICR_CODEPAGESIZE: page_size_bytes,
              FICR_CODESIZE: flash_size_bytes // page_size_bytes,
              FICR_PART: PART_NRF52840, FICR_VARIANT: VARIANT_AAD0, FICR_PACKAGE: PACKAGE_QI,
              FICR_RAM: ram_size_bytes // 1024, FICR_FLASH: flash_size_bytes // 1024}
    for offset, value in fields.items():
        ficr[offset:offset + 4] = value.to_bytes(4, "little")
    uid_at = uid_address - FICR_BASE
    ficr[uid_at:uid_at + len(chip_uid)] = chip_uid
    return ficr


class Nrf52Flash:
    """Code flash at 0x0, UICR and FICR, written only through the NVMC's CONFIG/ERASE registers.

    Programming writes whole aligned words and can only clear bits; erases need CONFIG = EEN.
    APPROTECT is what UICR held at the last reset (``approtect_active``).
    """

    def __init__(self, core: CortexM, *, size_bytes: int, page_size_bytes: int,
                 ram: tuple[int, int], chip_uid: bytes, uid_address: int, uicr: bytearray,
                 content: bytes, power: PowerRail) -> None:
        if len(uicr) != UICR_SIZE:
            raise ValueError(f"UICR image has {len(uicr)} bytes, expected {UICR_SIZE}")
        self.size_bytes = size_bytes
        self.page_size_bytes = page_size_bytes
        self.power = power
        self.cells = FlashCells(content)
        self.memory = self.cells.memory
        self.uicr = FlashCells(bytes(uicr))
        self._config = CONFIG_REN
        self.approtect_active = False
        self._core = core
        self._ram = ram
        self.reset()
        wire_main_flash(core, self, self.cells, (0x0,))
        wire_main_flash(core, _UicrPort(self), self.uicr, (UICR_BASE,))
        map_read_only(core, FICR_BASE, factory_ficr(
            chip_uid=chip_uid, uid_address=uid_address, page_size_bytes=page_size_bytes,
            flash_size_bytes=size_bytes, ram_size_bytes=ram[1]))
        core.map_device(NVMC_BASE, 0x1000, self)
        core.map_device(WDT_BASE, 0x1000, ReadAsZero())
        core.reset_listeners.append(self.reset)

    @property
    def readout_protected(self) -> bool:
        """Whether APPROTECT was enabled at the last reset (the debug port is then blocked)."""
        return self.approtect_active

    @property
    def option_bytes(self) -> bytes:
        """The UICR, which the board keeps in its state file like STM32 option bytes."""
        return bytes(self.uicr.memory)

    def reset(self) -> None:
        """System reset: CONFIG back to read-only, APPROTECT loaded from UICR."""
        self._config = CONFIG_REN
        self.approtect_active = self.uicr.memory[UICR_APPROTECT] != APPROTECT_DISABLED

    # --- NVMC registers (PS §4.3.9) ----------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        """READY and READYNEXT read 1 (operations complete at once); CONFIG reads back."""
        value = {READY: 1, READYNEXT: 1, CONFIG: self._config}.get(offset & ~3, 0)
        return lane(value, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        """CONFIG selects read-only, write or erase; the ERASE registers act in erase mode."""
        if offset == CONFIG:
            self._config = value & 0x3
        elif self._config != CONFIG_EEN:
            return
        elif offset in (ERASEPAGE, ERASEPCR0, ERASEPAGEPARTIAL):
            self._erase_page(value)
        elif offset == ERASEALL and value & 1:
            self.erase_all()
        elif offset == ERASEUICR and value & 1 and not self.approtect_active:
            self.uicr.erase()  # blocked while APPROTECT is enabled (PS §4.3.8)

    def _erase_page(self, address: int) -> None:
        if address % self.page_size_bytes or not 0 <= address < self.size_bytes:
            return
        self.cells.erase(address, self.page_size_bytes)

    def erase_all(self) -> None:
        """Erase code flash and UICR (what NVMC ERASEALL and CTRL-AP ERASEALL share)."""
        self.cells.erase()
        self.uicr.erase()

    def erase_ram(self) -> None:
        """CTRL-AP ERASEALL also clears RAM."""
        base, size = self._ram
        self._core.uc.mem_write(base, bytes(size))

    # --- programming (PS §4.3.1) -------------------------------------------------------------

    def program(self, offset: int, size: int, value: int) -> None:
        """A store into code flash: an aligned word with CONFIG = WEN clears bits."""
        self._program(self.cells, offset, size, value)

    def program_uicr(self, offset: int, size: int, value: int) -> None:
        """A store into UICR, programmed like code flash."""
        self._program(self.uicr, offset, size, value)

    def _program(self, cells: FlashCells, offset: int, size: int, value: int) -> None:
        if self._config != CONFIG_WEN or size != 4 or offset % 4:
            return
        if not self.power.consume(4):
            return
        old = int.from_bytes(cells.memory[offset:offset + 4], "little")
        cells.memory[offset:offset + 4] = (old & value).to_bytes(4, "little")


class _UicrPort:
    """UICR as a flash array: readable by the debugger, programmed through the NVMC."""

    def __init__(self, nvmc: Nrf52Flash) -> None:
        self._nvmc = nvmc
        self.memory = nvmc.uicr.memory

    @property
    def readout_protected(self) -> bool:
        return False

    def program(self, offset: int, size: int, value: int) -> None:
        self._nvmc.program_uicr(offset, size, value)
