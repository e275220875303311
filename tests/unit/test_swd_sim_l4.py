"""The emulated STM32L4 flash per RM0394: double-word programming, page erase, OPTR, OBL_LAUNCH."""

from __future__ import annotations

import pytest

from provisioner.sim.bus import BusFault
from provisioner.sim.stm32_fpec import KEY1, KEY2
from provisioner.sim.stm32f4_flash import OPTKEY1, OPTKEY2
from provisioner.sim.stm32l4_flash import (
    CR,
    CR_LOCK,
    CR_OBL_LAUNCH,
    CR_OPTLOCK,
    CR_OPTSTRT,
    CR_PER,
    CR_PG,
    CR_PNB_SHIFT,
    CR_STRT,
    FLASH_REGS,
    KEYR,
    OPTKEYR,
    OPTR,
    SR,
    SR_PROGERR,
    SR_SIZERR,
    default_option_register,
)
from provisioner.sim.swd_board import ChipSpec, VirtualSwdBoard
from provisioner.sim.swd_dap import BoardFaults

FLASH = 0x08000000
SPEC = ChipSpec("stm32l432kc", FLASH, 0x40000, 0x800, 0x20000000, 0x10000, 0x1FFF7590, 12,
                "stm32l4", ())


def make_board(content: bytes | None = None) -> VirtualSwdBoard:
    return VirtualSwdBoard(SPEC, chip_uid=bytes(range(12)),
                           option_bytes=default_option_register(),
                           flash_content=content or b"\xff" * SPEC.flash_size_bytes,
                           faults=BoardFaults())


def reg(board: VirtualSwdBoard, offset: int, value: int | None = None) -> int:
    if value is None:
        return board.bus.read(FLASH_REGS + offset, 4)
    board.bus.write(FLASH_REGS + offset, 4, value)
    return value


def unlock(board: VirtualSwdBoard) -> None:
    reg(board, KEYR, KEY1)
    reg(board, KEYR, KEY2)


def test_double_word_needs_two_word_writes_onto_erased_flash() -> None:
    board = make_board()
    assert bytes(board.bus.read(0x1FFF7590 + i, 1) for i in range(12)) == bytes(range(12))
    unlock(board)
    reg(board, CR, CR_PG)
    board.bus.write(FLASH, 4, 0x11111111)
    assert board.bus.read(FLASH, 4) == 0xFFFFFFFF  # nothing until the second word arrives
    board.bus.write(FLASH + 4, 4, 0x22222222)
    assert board.flash_bytes(FLASH, 8) == bytes.fromhex("1111111122222222")
    board.bus.write(FLASH, 4, 0x33333333)
    board.bus.write(FLASH + 4, 4, 0x44444444)
    assert reg(board, SR) & SR_PROGERR
    board.bus.write(FLASH + 8, 2, 0x5555)
    assert reg(board, SR) & SR_SIZERR


def test_page_erase_by_number() -> None:
    board = make_board(bytes(SPEC.flash_size_bytes))
    unlock(board)
    reg(board, CR, CR_PER | (3 << CR_PNB_SHIFT))
    reg(board, CR, CR_PER | (3 << CR_PNB_SHIFT) | CR_STRT)
    assert board.flash_bytes(FLASH + 0x1800, 0x800) == b"\xff" * 0x800
    assert board.flash_bytes(FLASH + 0x17FF, 1) + board.flash_bytes(FLASH + 0x2000, 1) == b"\0\0"


def test_option_keys_need_the_flash_unlocked_first() -> None:
    board = make_board()
    with pytest.raises(BusFault):
        reg(board, OPTKEYR, OPTKEY1)
    assert reg(board, CR) & (CR_LOCK | CR_OPTLOCK) == CR_LOCK | CR_OPTLOCK


def test_obl_launch_resets_and_applies_rdp_then_level0_mass_erases() -> None:
    board = make_board(b"\x42" * SPEC.flash_size_bytes)

    def set_rdp(rdp: int) -> None:
        unlock(board)
        reg(board, OPTKEYR, OPTKEY1)
        reg(board, OPTKEYR, OPTKEY2)
        reg(board, OPTR, (reg(board, OPTR) & ~0xFF) | rdp)
        reg(board, CR, CR_OPTSTRT)
        reg(board, CR, CR_OBL_LAUNCH)

    set_rdp(0xBB)
    assert reg(board, CR) & CR_LOCK  # the chip went through reset
    with pytest.raises(BusFault, match="readout protection"):
        board.bus.read(FLASH, 4)
    set_rdp(0xAA)
    assert board.bus.read(FLASH, 4) == 0xFFFFFFFF
    assert reg(board, OPTR) == 0xFFEFF8AA
