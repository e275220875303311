"""The nRF52 CTRL-AP (access port #1): reset, ERASEALL, APPROTECT status (nRF52840 PS v1.7)."""

from __future__ import annotations

from provisioner.sim.cortex_m import CortexM
from provisioner.sim.nrf52_nvmc import Nrf52Flash

CTRL_AP_NUM = 1
RESET, ERASEALL, ERASEALLSTATUS, APPROTECTSTATUS = 0x000, 0x004, 0x008, 0x00C
IDR = 0x0FC
CTRL_AP_IDR = 0x02880000  # Nordic (JEP106 0x244), class 0, not a MEM-AP
STATUS_READY = 0
APPROTECT_ENABLED, APPROTECT_DISABLED = 0, 1


class CtrlAp:
    """Reachable whatever APPROTECT says: the debugger's way to recover a protected chip.

    ERASEALL erases code flash, UICR and RAM at once (ERASEALLSTATUS reads ready); the cleared
    APPROTECT takes effect at the next reset, which RESET = 1 then 0 performs.
    """

    def __init__(self, core: CortexM, flash: Nrf52Flash) -> None:
        self._core = core
        self._flash = flash
        self._reset = 0
        self._eraseall = 0

    def read(self, reg: int) -> int:
        """RESET and ERASEALL read back; ERASEALLSTATUS is ready; APPROTECTSTATUS; IDR."""
        if reg == RESET:
            return self._reset
        if reg == ERASEALL:
            return self._eraseall
        if reg == ERASEALLSTATUS:
            return STATUS_READY
        if reg == APPROTECTSTATUS:
            return APPROTECT_ENABLED if self._flash.approtect_active else APPROTECT_DISABLED
        if reg == IDR:
            return CTRL_AP_IDR
        return 0

    def write(self, reg: int, value: int) -> None:
        """RESET holds the chip in reset while 1 (released: it restarts); ERASEALL = 1 erases."""
        if reg == RESET:
            held, self._reset = self._reset, value & 1
            if held and not self._reset:
                self._core.reset()
        elif reg == ERASEALL:
            self._eraseall = value & 1
            if self._eraseall:
                self._flash.erase_all()
                self._flash.erase_ram()
