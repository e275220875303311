"""The emulated nRF52840: NVMC CONFIG/ERASE per the PS, FICR, UICR.APPROTECT and the CTRL-AP."""

from __future__ import annotations

from pathlib import Path

import pytest
from unicorn import arm_const

from provisioner.sim.nrf52_ctrl_ap import (
    APPROTECTSTATUS,
    CTRL_AP_IDR,
    CTRL_AP_NUM,
    ERASEALL,
    ERASEALLSTATUS,
    IDR,
    RESET,
)
from provisioner.sim.nrf52_nvmc import (
    CONFIG,
    CONFIG_EEN,
    CONFIG_REN,
    CONFIG_WEN,
    ERASEPAGE,
    ERASEUICR,
    NVMC_BASE,
    READY,
    UICR_BASE,
    default_uicr,
)
from provisioner.sim.nrf52_nvmc import ERASEALL as NVMC_ERASEALL
from provisioner.sim.swd_board import (
    ChipSpec,
    VirtualSwdBoard,
    create_virtual_board,
    load_board,
    save_board,
)
from provisioner.sim.swd_dap import CSW, CSW_DEVICEEN, DP_SELECT, DRW, TAR, AckFault, BoardFaults

SPEC = ChipSpec("nrf52840", 0x0, 0x100000, 0x1000, 0x20000000, 0x40000, 0x10000060, 8, "nrf52")
UID = bytes.fromhex("8877665544332211")
APPROTECT = UICR_BASE + 0x208


def make_board(content: bytes | None = None) -> VirtualSwdBoard:
    return VirtualSwdBoard(SPEC, chip_uid=UID, option_bytes=default_uicr(),
                           flash_content=content or b"\xff" * SPEC.flash_size_bytes,
                           faults=BoardFaults())


def nvmc(board: VirtualSwdBoard, offset: int, value: int | None = None) -> int:
    if value is None:
        return board.bus.read(NVMC_BASE + offset, 4)
    board.bus.write(NVMC_BASE + offset, 4, value)
    return value


def ctrl_ap(board: VirtualSwdBoard, reg: int, value: int | None = None) -> int:
    board.dap.write_dp(DP_SELECT, (CTRL_AP_NUM << 24) | (reg & 0xF0))
    if value is None:
        return board.dap.read_ap(reg & 0xC)
    board.dap.write_ap(reg & 0xC, value)
    return value


def ahb_read(board: VirtualSwdBoard, address: int) -> int:
    board.dap.write_dp(DP_SELECT, 0)
    board.dap.write_ap(TAR, address)
    return board.dap.read_ap(DRW)


def lock(board: VirtualSwdBoard) -> None:
    """What the backend does: APPROTECT = 0x00 through the NVMC, then a reset."""
    nvmc(board, CONFIG, CONFIG_WEN)
    board.bus.write(APPROTECT, 4, 0xFFFFFF00)
    nvmc(board, CONFIG, CONFIG_REN)
    board.core.reset()


def test_ficr_holds_deviceid_and_part_information() -> None:
    board = make_board()
    assert board.bus.read(0x10000060, 4) | board.bus.read(0x10000064, 4) << 32 == int.from_bytes(
        UID, "little")
    assert board.bus.read(0x10000100, 4) == 0x52840  # INFO.PART
    assert board.bus.read(0x10000010, 4) == 0x1000  # CODEPAGESIZE
    assert board.bus.read(0x10000014, 4) == 256  # CODESIZE in pages
    assert nvmc(board, READY) == 1
    assert ctrl_ap(board, IDR) == CTRL_AP_IDR
    assert ctrl_ap(board, APPROTECTSTATUS) == 1  # disabled


def test_programming_needs_wen_and_whole_words_and_only_clears_bits() -> None:
    board = make_board()
    board.bus.write(0x1000, 4, 0x12345678)
    assert board.flash_bytes(0x1000, 4) == b"\xff" * 4  # CONFIG = REN: ignored
    nvmc(board, CONFIG, CONFIG_WEN)
    board.bus.write(0x1000, 4, 0x0F0F00F0)
    board.bus.write(0x1000, 4, 0xFFFF0FFF)  # a second write can only clear more bits
    board.bus.write(0x1004, 2, 0x0000)  # half-words are not programmed
    assert board.flash_bytes(0x1000, 8) == bytes.fromhex("f0000f0fffffffff")


def test_erasepage_needs_een_and_erases_one_page() -> None:
    board = make_board(bytes(SPEC.flash_size_bytes))
    nvmc(board, ERASEPAGE, 0x3000)
    assert board.flash_bytes(0x3000, 4) == bytes(4)  # CONFIG = REN: ignored
    nvmc(board, CONFIG, CONFIG_EEN)
    nvmc(board, ERASEPAGE, 0x3000)
    assert board.flash_bytes(0x3000, 0x1000) == b"\xff" * 0x1000
    assert board.flash_bytes(0x2FFF, 1) + board.flash_bytes(0x4000, 1) == b"\0\0"
    nvmc(board, NVMC_ERASEALL, 1)
    assert board.flash_bytes(0, SPEC.flash_size_bytes) == b"\xff" * SPEC.flash_size_bytes


def test_core_stm_into_flash_keeps_only_what_the_nvmc_programmed() -> None:
    """unicorn stores the raw value after the write hook; the controller's result must win."""
    board = make_board()
    board.bus.write(0x20000000, 4, 0xBE00C002)  # stmia r0!, {r1}; bkpt #0
    uc = board.core.uc

    def run_stm(value: int) -> None:
        uc.reg_write(arm_const.UC_ARM_REG_R0, 0x2000)
        uc.reg_write(arm_const.UC_ARM_REG_R1, value)
        uc.reg_write(arm_const.UC_ARM_REG_PC, 0x20000000)
        board.core.resume()
        assert board.core.halted
        assert not board.core.locked_up

    board.core.halt()
    run_stm(0x11223344)
    assert board.flash_bytes(0x2000, 4) == b"\xff" * 4  # CONFIG = REN
    nvmc(board, CONFIG, CONFIG_WEN)
    run_stm(0xF0F0F0F0)
    run_stm(0x0F0F0FFF)
    assert board.flash_bytes(0x2000, 4) == bytes.fromhex("f0000000")


def test_approtect_blocks_the_mem_ap_after_reset_only() -> None:
    board = make_board(b"\x5a" * SPEC.flash_size_bytes)
    nvmc(board, CONFIG, CONFIG_WEN)
    board.bus.write(APPROTECT, 4, 0xFFFFFF00)
    assert ahb_read(board, 0x0) == 0x5A5A5A5A  # written, not yet loaded
    board.core.reset()
    assert ctrl_ap(board, APPROTECTSTATUS) == 0  # enabled
    with pytest.raises(AckFault):
        ahb_read(board, 0x0)
    board.dap.write_dp(0x0, 0x4)  # ABORT: clear the sticky error
    assert not board.dap.read_ap(CSW) & CSW_DEVICEEN
    nvmc(board, CONFIG, CONFIG_EEN)  # the core's own NVMC cannot erase UICR now
    nvmc(board, ERASEUICR, 1)
    assert board.bus.read(APPROTECT, 4) == 0xFFFFFF00


def test_ctrl_ap_eraseall_clears_flash_uicr_and_ram_then_reset_unlocks() -> None:
    board = make_board(b"\x5a" * SPEC.flash_size_bytes)
    board.bus.write(0x20000100, 4, 0xDEADBEEF)
    nvmc(board, CONFIG, CONFIG_WEN)
    board.bus.write(UICR_BASE + 0x80, 4, 0x12345678)  # CUSTOMER[0]
    lock(board)
    ctrl_ap(board, ERASEALL, 1)
    assert ctrl_ap(board, ERASEALLSTATUS) == 0
    assert board.flash_bytes(0, SPEC.flash_size_bytes) == b"\xff" * SPEC.flash_size_bytes
    assert bytes(board.flash.option_bytes) == bytes(default_uicr())
    assert ctrl_ap(board, APPROTECTSTATUS) == 0  # still locked until the reset
    ctrl_ap(board, RESET, 1)
    ctrl_ap(board, RESET, 0)
    assert ctrl_ap(board, APPROTECTSTATUS) == 1
    board.dap.write_dp(0x0, 0x4)
    assert ahb_read(board, 0x0) == 0xFFFFFFFF
    assert ahb_read(board, 0x20000100) == 0


def test_protection_survives_a_power_cycle(tmp_path: Path) -> None:
    create_virtual_board(tmp_path, "VN1", "nrf52840", UID)
    board = load_board(tmp_path, "VN1")
    assert not board.flash.readout_protected
    lock(board)
    save_board(tmp_path, "VN1", board)
    again = load_board(tmp_path, "VN1")
    assert again.flash.readout_protected
    assert ctrl_ap(again, APPROTECTSTATUS) == 0
    with pytest.raises(AckFault):
        ahb_read(again, 0x10000060)  # FICR is out of reach too


def test_uicr_erase_works_while_unprotected() -> None:
    board = make_board()
    nvmc(board, CONFIG, CONFIG_WEN)
    board.bus.write(UICR_BASE + 0x80, 4, 0)
    nvmc(board, CONFIG, CONFIG_EEN)
    nvmc(board, ERASEUICR, 1)
    assert board.bus.read(UICR_BASE + 0x80, 4) == 0xFFFFFFFF
