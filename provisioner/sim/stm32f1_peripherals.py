"""The STM32F1 peripherals the reference bootloader touches: RCC, GPIO, USART1, CRC (RM0008).

Modelled as far as polled firmware sees them: clock ready flags follow their enables, GPIO
output latches, the CRC unit's data register, and a USART whose transmitter is always ready
(bytes go to ``Usart.on_transmit`` at once) and whose receiver serves ``Usart.receive`` input.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hex_generator.checksums import crc32_stm32
from provisioner.sim.bus import RegisterFile
from provisioner.sim.cortex_m import CortexM

RCC_BASE = 0x40021000
GPIO_BASES = {"A": 0x40010800, "B": 0x40010C00, "C": 0x40011000}
USART1_BASE = 0x40013800
CRC_BASE = 0x40023000
USART_SR, USART_DR = 0x00, 0x04
SR_RXNE, SR_TC, SR_TXE = 1 << 5, 1 << 6, 1 << 7
RCC_CR, RCC_CFGR = 0x00, 0x04
GPIO_CRL, GPIO_CRH, GPIO_IDR, GPIO_ODR, GPIO_BSRR, GPIO_BRR = 0x0, 0x4, 0x8, 0xC, 0x10, 0x14
TRANSMIT_KEEP_BYTES = 64 * 1024


class Rcc:
    """Reset and clock control: HSI on at reset; HSE/PLL ready as soon as enabled (§7.3)."""

    def __init__(self) -> None:
        self.regs = RegisterFile({RCC_CR: 0x00000083})

    def read(self, offset: int, size: int) -> int:
        word = offset & ~3
        value = self.regs.read(word, 4)
        if word == RCC_CR:  # xxRDY mirrors xxON: HSI bit 0→1, HSE 16→17, PLL 24→25
            value = (value & ~((1 << 1) | (1 << 17) | (1 << 25))) | (
                (value & ((1 << 0) | (1 << 16) | (1 << 24))) << 1)
        elif word == RCC_CFGR:  # SWS follows SW
            value = (value & ~0xC) | ((value & 0x3) << 2)
        return (value >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        self.regs.write(offset, size, value)


class Gpio:
    """One port: configuration registers and the output latch (IDR reads the latch back)."""

    def __init__(self) -> None:
        self.regs = RegisterFile({GPIO_CRL: 0x44444444, GPIO_CRH: 0x44444444})
        self.odr = 0

    def read(self, offset: int, size: int) -> int:
        word = offset & ~3
        if word in (GPIO_IDR, GPIO_ODR):
            return self.odr >> (8 * (offset & 3)) & ((1 << (8 * size)) - 1)
        return self.regs.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        word = offset & ~3
        if word == GPIO_BSRR:  # set bits 0-15, reset bits 16-31; set wins (§9.2.5)
            self.odr = (self.odr & ~(value >> 16)) | (value & 0xFFFF)
        elif word == GPIO_BRR:
            self.odr &= ~value & 0xFFFF
        elif word == GPIO_ODR:
            self.odr = value & 0xFFFF
        else:
            self.regs.write(offset, size, value)


class Usart:
    """USART1 data path: every DR write is one byte out, every DR read pops one byte in."""

    def __init__(self) -> None:
        self.regs = RegisterFile()
        self.on_transmit: Callable[[bytes], None] | None = None
        self.transmitted = bytearray()  # kept when nobody listens (newest bytes win)
        self._received: deque[int] = deque()
        self.received_any = threading.Event()

    def receive(self, data: bytes) -> None:
        """Queue bytes arriving on RX (thread safe)."""
        self._received.extend(data)
        self.received_any.set()

    def read(self, offset: int, size: int) -> int:
        word = offset & ~3
        if word == USART_SR:
            return SR_TXE | SR_TC | (SR_RXNE if self._received else 0)
        if word == USART_DR:
            return self._received.popleft() if self._received else 0
        return self.regs.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        word = offset & ~3
        if word == USART_DR:
            byte = bytes([value & 0xFF])
            self.transmitted += byte
            del self.transmitted[:-TRANSMIT_KEEP_BYTES]
            if self.on_transmit is not None:
                self.on_transmit(byte)
        elif word != USART_SR:
            self.regs.write(offset, size, value)


class CrcUnit:
    """CRC calculation unit (§4): DR accumulates words, CR bit 0 resets it to 0xFFFFFFFF."""

    def __init__(self) -> None:
        self.value = 0xFFFFFFFF
        self.idr = 0

    def read(self, offset: int, size: int) -> int:
        word = offset & ~3
        return self.value if word == 0x0 else self.idr if word == 0x4 else 0

    def write(self, offset: int, size: int, value: int) -> None:
        word = offset & ~3
        if word == 0x0:
            self.value = crc32_stm32(value.to_bytes(4, "little"), self.value)
        elif word == 0x4:
            self.idr = value & 0xFF
        elif word == 0x8 and value & 1:
            self.value = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Stm32F1Peripherals:
    """The peripherals of one board, for whoever bridges them (the USART to a pty)."""

    rcc: Rcc
    gpio: dict[str, Gpio]
    usart1: Usart
    crc: CrcUnit


def attach_stm32f1_peripherals(core: CortexM) -> Stm32F1Peripherals:
    """Map RCC, GPIOA-C, USART1 and CRC for the core and the debugger."""
    peripherals = Stm32F1Peripherals(Rcc(), {port: Gpio() for port in GPIO_BASES}, Usart(),
                                     CrcUnit())
    core.map_device(RCC_BASE, 0x400, peripherals.rcc)
    for port, base in GPIO_BASES.items():
        core.map_device(base, 0x400, peripherals.gpio[port])
    core.map_device(USART1_BASE, 0x400, peripherals.usart1)
    core.map_device(CRC_BASE, 0x400, peripherals.crc)
    return peripherals
