"""Readout-protection sequences: F1 on the emulated FPEC, F4/L4/nRF52 on register models."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from provisioner.errors import FlashError, LinkTimeout
from provisioner.flash import swd_protect as sp
from provisioner.sim.stm32_fpec import OPTION_BYTES, default_option_bytes
from provisioner.sim.swd_board import ChipSpec, VirtualSwdBoard
from provisioner.sim.swd_dap import BoardFaults

SPEC = ChipSpec("stm32f103c8", 0x08000000, 0x10000, 0x400, 0x20000000, 0x5000, 0x1FFFF7E8, 12)


class BusPort:
    """The emulated chip's bus as a RegisterPort (what pyOCD's target offers)."""

    def __init__(self, board: VirtualSwdBoard) -> None:
        self.bus = board.bus

    def read32(self, addr: int) -> int:
        return self.bus.read(addr, 4)

    def write32(self, addr: int, value: int) -> None:
        self.bus.write(addr, 4, value)

    def write16(self, addr: int, value: int) -> None:
        self.bus.write(addr, 2, value)

    def read_memory_block8(self, addr: int, size: int) -> Sequence[int]:
        return [self.bus.read(addr + i, 1) for i in range(size)]


def test_f1_sequence_protects_keeps_user_bytes_and_unprotects_with_mass_erase() -> None:
    option_bytes = default_option_bytes()
    option_bytes[2:4] = bytes((0xFB, 0x04))  # USER: WDG_SW cleared (hardware watchdog)
    board = VirtualSwdBoard(SPEC, chip_uid=bytes(12), option_bytes=option_bytes,
                            flash_content=b"\x11" * SPEC.flash_size_bytes, faults=BoardFaults())
    port = BusPort(board)
    sp.protect_stm32f1(port, 1)
    board.core.reset()
    assert sp.readout_protected(port, "stm32f1")
    assert bytes(board.flash.option_bytes[:4]) == bytes((0x00, 0xFF, 0xFB, 0x04))
    sp.protect_stm32f1(port, 0)
    board.core.reset()
    assert not sp.readout_protected(port, "stm32f1")
    assert board.bus.read(OPTION_BYTES + 2, 1) == 0xFB
    assert board.flash_bytes(SPEC.flash_base, 16) == b"\xff" * 16


class Registers:
    """A word-addressed register model whose writes run a per-address hook."""

    def __init__(self, values: dict[int, int]) -> None:
        self.values = dict(values)
        self.writes: list[tuple[int, int]] = []

    def read32(self, addr: int) -> int:
        return self.values.get(addr, 0)

    def write32(self, addr: int, value: int) -> None:
        self.writes.append((addr, value))
        self.on_write(addr, value)

    def write16(self, addr: int, value: int) -> None:
        self.write32(addr, value)

    def read_memory_block8(self, addr: int, size: int) -> Sequence[int]:
        return [0xFF] * size

    def on_write(self, addr: int, value: int) -> None:
        self.values[addr] = value


class F4Flash(Registers):
    """RM0090 §3.6.3: OPTCR is locked until OPTKEYR gets both keys; OPTSTRT loads RDP."""

    def __init__(self) -> None:
        super().__init__({sp.F4_OPTCR: 0x0FFFAAED})
        self._stage = 0
        self.rdp_loaded = 0xAA

    def on_write(self, addr: int, value: int) -> None:
        if addr == sp.F4_OPTKEYR:
            expected = (sp.STM32_OPTKEY1, sp.STM32_OPTKEY2)[self._stage]
            self._stage = self._stage + 1 if value == expected else 0
            if self._stage == 2:
                self.values[sp.F4_OPTCR] &= ~sp.F4_OPTCR_OPTLOCK
        elif addr == sp.F4_OPTCR and not self.values[sp.F4_OPTCR] & sp.F4_OPTCR_OPTLOCK:
            self.values[addr] = value & ~sp.F4_OPTCR_OPTSTRT
            if value & sp.F4_OPTCR_OPTSTRT:
                self.rdp_loaded = (value >> 8) & 0xFF


@pytest.mark.parametrize(("level", "rdp"), [(1, 0x55), (0, 0xAA)])
def test_f4_sequence_unlocks_sets_rdp_starts_and_relocks(level: int, rdp: int) -> None:
    model = F4Flash()
    sp.protect_stm32f4(model, level)
    assert model.rdp_loaded == rdp
    assert model.values[sp.F4_OPTCR] & sp.F4_OPTCR_OPTLOCK
    assert model.values[sp.F4_OPTCR] & 0x0FFF00FC == 0x0FFF00EC  # other option bits kept
    assert sp.readout_protected(model, "stm32f4") is (level == 1)


class L4Flash(Registers):
    """RM0394 §3.7.2: CR.LOCK then CR.OPTLOCK cleared by their keys; OPTSTRT commits OPTR."""

    def __init__(self) -> None:
        super().__init__({sp.L4_CR: sp.L4_CR_LOCK | sp.L4_CR_OPTLOCK, sp.L4_OPTR: 0xFFEFF8AA})
        self.stages = {sp.L4_KEYR: 0, sp.L4_OPTKEYR: 0}
        self.committed: int | None = None
        self.launched = False

    def on_write(self, addr: int, value: int) -> None:
        keys = {sp.L4_KEYR: ((sp.STM32_KEY1, sp.STM32_KEY2), sp.L4_CR_LOCK),
                sp.L4_OPTKEYR: ((sp.STM32_OPTKEY1, sp.STM32_OPTKEY2), sp.L4_CR_OPTLOCK)}
        if addr in keys:
            sequence, bit = keys[addr]
            stage = self.stages[addr]
            self.stages[addr] = stage + 1 if value == sequence[stage] else 0
            if self.stages[addr] == 2:
                self.values[sp.L4_CR] &= ~bit
        elif addr == sp.L4_OPTR and not self.values[sp.L4_CR] & sp.L4_CR_OPTLOCK:
            self.values[addr] = value
        elif addr == sp.L4_CR:
            if value & sp.L4_CR_OPTSTRT and not value & sp.L4_CR_OPTLOCK:
                self.committed = self.values[sp.L4_OPTR] & 0xFF
            self.launched = bool(value & sp.L4_CR_OBL_LAUNCH)
            self.values[addr] = value & ~(sp.L4_CR_OPTSTRT | sp.L4_CR_OBL_LAUNCH)


def test_l4_sequence_commits_rdp_and_launches_option_load() -> None:
    model = L4Flash()
    sp.protect_stm32l4(model, 1)
    assert model.committed == 0x55
    assert model.values[sp.L4_OPTR] & ~0xFF == 0xFFEFF800
    sp.launch_option_load_stm32l4(model)
    assert model.launched
    assert sp.readout_protected(model, "stm32l4")


class Nrf52(Registers):
    """nRF52840 PS §4.3: UICR writes land only while NVMC.CONFIG = WEN; READY = 1 when idle."""

    def __init__(self) -> None:
        super().__init__({sp.NVMC_READY: 1, sp.UICR_APPROTECT: 0xFFFFFFFF})

    def on_write(self, addr: int, value: int) -> None:
        if addr == sp.UICR_APPROTECT:
            if self.values.get(sp.NVMC_CONFIG) == sp.NVMC_CONFIG_WEN:
                self.values[addr] &= value
        else:
            self.values[addr] = value


def test_nrf52_writes_approtect_through_the_nvmc() -> None:
    model = Nrf52()
    sp.protect_nrf52(model, 1)
    assert model.values[sp.UICR_APPROTECT] & 0xFF == 0x00
    assert model.values[sp.NVMC_CONFIG] == sp.NVMC_CONFIG_REN
    with pytest.raises(FlashError, match="CTRL-AP"):
        sp.protect_nrf52(model, 0)


def test_busy_controller_times_out_naming_the_register() -> None:
    model = F4Flash()
    model.values[sp.F4_SR] = sp.F4_SR_BSY
    ticks = iter(range(100))
    with pytest.raises(LinkTimeout) as caught:
        sp.protect_stm32f4(model, 1, clock=lambda: float(next(ticks)))
    assert caught.value.address == sp.F4_SR


def test_level_2_and_unknown_families_are_refused() -> None:
    with pytest.raises(FlashError, match="level 2"):
        sp.protect_stm32f4(F4Flash(), 2)
    with pytest.raises(FlashError, match="no readout protection sequence"):
        sp.family_of("STM32G071", "stm32_option_bytes")
    assert sp.family_of("STM32F411CE", "stm32_option_bytes") == "stm32f4"
    assert sp.family_of("nRF52840", "nrf52_approtect") == "nrf52"
