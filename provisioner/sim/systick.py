"""The Cortex-M SysTick timer (ARMv7-M ARM §B3.3) on polled time.

The emulation has no cycle clock, so time advances with the software that watches it: every
read of CSR or CVR while the counter runs counts ``CYCLES_PER_POLL`` processor clocks down (a
polling loop ``while (!(CSR & COUNTFLAG))`` is about that long on a Cortex-M3). Deterministic,
and firmware that polls SysTick for delays or timeouts sees them expire. Interrupts are not
delivered (the emulated core has no NVIC): firmware for this simulator polls.
"""

from __future__ import annotations

CSR, RVR, CVR, CALIB = 0x0, 0x4, 0x8, 0xC
CSR_ENABLE, CSR_TICKINT, CSR_CLKSOURCE, CSR_COUNTFLAG = 1 << 0, 1 << 1, 1 << 2, 1 << 16
CYCLES_PER_POLL = 16
COUNTER_MASK = 0x00FFFFFF


class SysTick:
    """CSR/RVR/CVR/CALIB at offsets 0x0..0xC of 0xE000E010."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Reset values: disabled, reload and current value unknown (0 here)."""
        self.csr = 0
        self.rvr = 0
        self.cvr = 0

    def _advance(self) -> None:
        if not self.csr & CSR_ENABLE:
            return
        remaining = CYCLES_PER_POLL
        while remaining:
            if self.cvr == 0:  # reload on the clock after 0 (§B3.3.1)
                self.cvr = self.rvr & COUNTER_MASK
                if self.rvr == 0:
                    return
                remaining -= 1
                continue
            step = min(remaining, self.cvr)
            self.cvr -= step
            remaining -= step
            if self.cvr == 0:
                self.csr |= CSR_COUNTFLAG

    def read(self, offset: int, size: int) -> int:
        """Read a register; CSR reads clear COUNTFLAG."""
        word = offset & ~3
        if word == CSR:
            self._advance()
            value = self.csr
            self.csr &= ~CSR_COUNTFLAG
            return value
        if word == CVR:
            self._advance()
            return self.cvr
        if word == RVR:
            return self.rvr
        return 0  # CALIB: no reference clock, TENMS unknown

    def write(self, offset: int, size: int, value: int) -> None:
        """Write a register; any CVR write clears it and COUNTFLAG."""
        word = offset & ~3
        if word == CSR:
            self.csr = (self.csr & CSR_COUNTFLAG) | (value & (CSR_ENABLE | CSR_TICKINT
                                                              | CSR_CLKSOURCE))
        elif word == RVR:
            self.rvr = value & COUNTER_MASK
        elif word == CVR:
            self.cvr = 0
            self.csr &= ~CSR_COUNTFLAG
