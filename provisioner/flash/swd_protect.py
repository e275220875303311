"""Readout protection through each chip family's own flash registers, per its reference manual."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from provisioner.errors import FlashError, LinkTimeout, TargetOperationFailed

STM32_KEY1, STM32_KEY2 = 0x45670123, 0xCDEF89AB
STM32_OPTKEY1, STM32_OPTKEY2 = 0x08192A3B, 0x4C5D6E7F
RDP_LEVEL0, RDP_LEVEL1_F4_L4, RDP_LEVEL0_F1, RDP_LEVEL1_F1 = 0xAA, 0x55, 0xA5, 0x00


class RegisterPort(Protocol):
    """The target memory access protection needs (pyOCD's ``Target`` provides it)."""

    def read32(self, addr: int) -> int: ...

    def write32(self, addr: int, value: int) -> None: ...

    def write16(self, addr: int, value: int) -> None: ...

    def read_memory_block8(self, addr: int, size: int) -> Sequence[int]: ...


Clock = Callable[[], float]


def _wait(port: RegisterPort, address: int, busy_mask: int, timeout_s: float, clock: Clock,
          *, busy_when_set: bool = True) -> None:
    deadline = clock() + timeout_s
    while bool(port.read32(address) & busy_mask) == busy_when_set:
        if clock() > deadline:
            raise LinkTimeout("protect", f"waiting {timeout_s:g} s for the flash controller",
                              address)


def _check_level(level: int) -> None:
    if level not in (0, 1):
        raise FlashError(f"readout protection level {level} is not offered (0 or 1; level 2 "
                         "is irreversible and out of scope)")


# --- STM32F1: option bytes programmed through FLASH_CR OPTER/OPTPG (PM0075 §2.4-2.5) ---------

F1_FLASH = 0x40022000
F1_KEYR, F1_OPTKEYR = F1_FLASH + 0x04, F1_FLASH + 0x08
F1_SR, F1_CR = F1_FLASH + 0x0C, F1_FLASH + 0x10
F1_OPTION_BYTES = 0x1FFFF800
F1_SR_BSY, F1_SR_PGERR, F1_SR_WRPRTERR = 1 << 0, 1 << 2, 1 << 4
F1_OBR_RDPRT = 1 << 1
F1_CR_OPTPG, F1_CR_OPTER, F1_CR_STRT = 1 << 4, 1 << 5, 1 << 6
F1_CR_LOCK, F1_CR_OPTWRE = 1 << 7, 1 << 9


def _f1_check(port: RegisterPort, step: str) -> None:
    status = port.read32(F1_SR)
    if status & (F1_SR_PGERR | F1_SR_WRPRTERR):
        kind = "write protection error" if status & F1_SR_WRPRTERR else "programming error"
        raise TargetOperationFailed("protect", f"{step}: FLASH_SR reports a {kind}", F1_SR)


def protect_stm32f1(port: RegisterPort, level: int, clock: Clock = time.monotonic) -> None:
    """Rewrite the option bytes with RDP = 0x00 (level 1) or 0xA5 (level 0, mass-erases)."""
    _check_level(level)
    saved = bytes(port.read_memory_block8(F1_OPTION_BYTES, 16))
    if port.read32(F1_CR) & F1_CR_LOCK:
        port.write32(F1_KEYR, STM32_KEY1)
        port.write32(F1_KEYR, STM32_KEY2)
    port.write32(F1_OPTKEYR, STM32_KEY1)
    port.write32(F1_OPTKEYR, STM32_KEY2)
    if not port.read32(F1_CR) & F1_CR_OPTWRE:
        raise TargetOperationFailed("protect", "FLASH_CR.OPTWRE stayed clear after the keys",
                                    F1_CR)
    port.write32(F1_SR, F1_SR_PGERR | F1_SR_WRPRTERR)
    port.write32(F1_CR, F1_CR_OPTWRE | F1_CR_OPTER)
    port.write32(F1_CR, F1_CR_OPTWRE | F1_CR_OPTER | F1_CR_STRT)
    _wait(port, F1_SR, F1_SR_BSY, 30.0, clock)  # removing RDP mass-erases the main flash
    _f1_check(port, "option byte erase")
    port.write32(F1_CR, F1_CR_OPTWRE | F1_CR_OPTPG)
    port.write16(F1_OPTION_BYTES, RDP_LEVEL0_F1 if level == 0 else RDP_LEVEL1_F1)
    _wait(port, F1_SR, F1_SR_BSY, 1.0, clock)
    for offset in range(2, 16, 2):  # restore USER, DATA and WRP bytes the erase cleared
        port.write16(F1_OPTION_BYTES + offset, saved[offset])
        _wait(port, F1_SR, F1_SR_BSY, 1.0, clock)
    _f1_check(port, "option byte program")
    port.write32(F1_CR, F1_CR_LOCK)


# --- STM32F4: FLASH_OPTCR RDP field + OPTSTRT (RM0090 §3.6.3, §3.7.3) ------------------------

F4_FLASH = 0x40023C00
F4_OPTKEYR, F4_SR, F4_OPTCR = F4_FLASH + 0x08, F4_FLASH + 0x0C, F4_FLASH + 0x14
F4_SR_BSY = 1 << 16
F4_OPTCR_OPTLOCK, F4_OPTCR_OPTSTRT = 1 << 0, 1 << 1


def protect_stm32f4(port: RegisterPort, level: int, clock: Clock = time.monotonic) -> None:
    """Set FLASH_OPTCR.RDP to 0x55 (level 1) or 0xAA (level 0, mass-erases) and start."""
    _check_level(level)
    if port.read32(F4_OPTCR) & F4_OPTCR_OPTLOCK:
        port.write32(F4_OPTKEYR, STM32_OPTKEY1)
        port.write32(F4_OPTKEYR, STM32_OPTKEY2)
    _wait(port, F4_SR, F4_SR_BSY, 1.0, clock)
    optcr = port.read32(F4_OPTCR) & ~(0xFF00 | F4_OPTCR_OPTLOCK | F4_OPTCR_OPTSTRT)
    optcr |= (RDP_LEVEL0 if level == 0 else RDP_LEVEL1_F4_L4) << 8
    port.write32(F4_OPTCR, optcr)
    port.write32(F4_OPTCR, optcr | F4_OPTCR_OPTSTRT)
    _wait(port, F4_SR, F4_SR_BSY, 60.0, clock)
    port.write32(F4_OPTCR, optcr | F4_OPTCR_OPTLOCK)


# --- STM32L4: FLASH_OPTR RDP + OPTSTRT, then OBL_LAUNCH (RM0394 §3.7.2, §3.4.2) ----------------

L4_FLASH = 0x40022000
L4_KEYR, L4_OPTKEYR, L4_SR = L4_FLASH + 0x08, L4_FLASH + 0x0C, L4_FLASH + 0x10
L4_CR, L4_OPTR = L4_FLASH + 0x14, L4_FLASH + 0x20
L4_SR_BSY, L4_SR_ERRORS = 1 << 16, 0xC3FA
L4_CR_OPTSTRT, L4_CR_OBL_LAUNCH, L4_CR_OPTLOCK, L4_CR_LOCK = 1 << 17, 1 << 27, 1 << 30, 1 << 31


def protect_stm32l4(port: RegisterPort, level: int, clock: Clock = time.monotonic) -> None:
    """Set FLASH_OPTR.RDP and start the option write (``launch_option_load_stm32l4`` applies it)."""
    _check_level(level)
    if port.read32(L4_CR) & L4_CR_LOCK:
        port.write32(L4_KEYR, STM32_KEY1)
        port.write32(L4_KEYR, STM32_KEY2)
    if port.read32(L4_CR) & L4_CR_OPTLOCK:
        port.write32(L4_OPTKEYR, STM32_OPTKEY1)
        port.write32(L4_OPTKEYR, STM32_OPTKEY2)
    _wait(port, L4_SR, L4_SR_BSY, 1.0, clock)
    port.write32(L4_SR, L4_SR_ERRORS)
    optr = port.read32(L4_OPTR) & ~0xFF
    port.write32(L4_OPTR, optr | (RDP_LEVEL0 if level == 0 else RDP_LEVEL1_F4_L4))
    port.write32(L4_CR, port.read32(L4_CR) | L4_CR_OPTSTRT)
    _wait(port, L4_SR, L4_SR_BSY, 60.0, clock)
    if port.read32(L4_SR) & L4_SR_ERRORS:
        raise TargetOperationFailed("protect", "FLASH_SR reports an option write error", L4_SR)


def launch_option_load_stm32l4(port: RegisterPort) -> None:
    """FLASH_CR.OBL_LAUNCH: reload the option bytes; the chip resets (the link may drop)."""
    port.write32(L4_CR, port.read32(L4_CR) | L4_CR_OBL_LAUNCH)


# --- nRF52: UICR.APPROTECT written through the NVMC (nRF52840 PS §4.3, §4.5) ----------------

NVMC_READY, NVMC_CONFIG = 0x4001E400, 0x4001E504
NVMC_CONFIG_REN, NVMC_CONFIG_WEN = 0, 1
UICR_APPROTECT = 0x10001208
APPROTECT_ENABLED = 0xFFFFFF00


def protect_nrf52(port: RegisterPort, level: int, clock: Clock = time.monotonic) -> None:
    """Write UICR.APPROTECT = 0x00 (level 1). Level 0 needs CTRL-AP ERASEALL, not this path."""
    _check_level(level)
    if level == 0:
        raise FlashError("nRF52 APPROTECT is removed by a CTRL-AP mass erase, not by NVMC writes")
    port.write32(NVMC_CONFIG, NVMC_CONFIG_WEN)
    _wait(port, NVMC_READY, 1, 1.0, clock, busy_when_set=False)
    port.write32(UICR_APPROTECT, APPROTECT_ENABLED)
    _wait(port, NVMC_READY, 1, 1.0, clock, busy_when_set=False)
    port.write32(NVMC_CONFIG, NVMC_CONFIG_REN)


class AccessPortRegisters(Protocol):
    """Register access to one access port (pyOCD's ``AccessPort`` provides it)."""

    def write_reg(self, addr: int, data: int) -> None: ...


CTRL_AP_RESET = 0x000


def reset_nrf52(ctrl_ap: AccessPortRegisters) -> None:
    """Pulse CTRL-AP RESET: a system reset that reloads UICR.APPROTECT (nRF52840 PS v1.7)."""
    ctrl_ap.write_reg(CTRL_AP_RESET, 1)
    ctrl_ap.write_reg(CTRL_AP_RESET, 0)


PROTECTORS: dict[str, Callable[[RegisterPort, int, Clock], None]] = {
    "stm32f1": protect_stm32f1,
    "stm32f4": protect_stm32f4,
    "stm32l4": protect_stm32l4,
    "nrf52": protect_nrf52,
}


def readout_protected(port: RegisterPort, family: str) -> bool:
    """Whether the loaded option bytes of an STM32 report RDP level 1 or 2."""
    if family == "stm32f1":
        return bool(port.read32(F1_FLASH + 0x1C) & F1_OBR_RDPRT)
    if family == "stm32f4":
        return (port.read32(F4_OPTCR) >> 8) & 0xFF != RDP_LEVEL0
    if family == "stm32l4":
        return port.read32(L4_OPTR) & 0xFF != RDP_LEVEL0
    raise FlashError(f"no register-level protection status for {family}")


def family_of(mcu: str, method: str) -> str:
    """The protection family for a profile's ``mcu`` and ``readout_protection.method``."""
    prefix = mcu.lower()[:7] if method == "stm32_option_bytes" else mcu.lower()[:5]
    if prefix not in PROTECTORS:
        raise FlashError(f"no readout protection sequence for {mcu} ({method})")
    return prefix
