"""The emulated STM32F4 flash interface per RM0090: keys, sector erase, PSIZE, OPTCR and RDP."""

from __future__ import annotations

import pytest

from provisioner.sim.bus import BusFault
from provisioner.sim.stm32_fpec import KEY1, KEY2
from provisioner.sim.stm32f4_flash import (
    CR,
    CR_LOCK,
    CR_PG,
    CR_SER,
    CR_SNB_SHIFT,
    CR_STRT,
    FLASH_IF,
    FLASH_PAGE,
    KEYR,
    OPTCR,
    OPTCR_OPTLOCK,
    OPTCR_OPTSTRT,
    OPTKEY1,
    OPTKEY2,
    OPTKEYR,
    SR,
    SR_PGPERR,
    SR_WRPERR,
    default_option_word,
)
from provisioner.sim.swd_board import ChipSpec, VirtualSwdBoard
from provisioner.sim.swd_dap import BoardFaults

FLASH = 0x08000000
SECTORS = tuple([(FLASH + i * 0x4000, 0x4000) for i in range(4)] + [(FLASH + 0x10000, 0x10000)]
                + [(FLASH + 0x20000 + i * 0x20000, 0x20000) for i in range(3)])
SPEC = ChipSpec("stm32f411ce", FLASH, 0x80000, None, 0x20000000, 0x20000, 0x1FFF7A10, 12,
                "stm32f4", SECTORS)
UID = bytes(range(0xA0, 0xAC))


def make_board(content: bytes | None = None) -> VirtualSwdBoard:
    return VirtualSwdBoard(SPEC, chip_uid=UID, option_bytes=default_option_word(),
                           flash_content=content or b"\xff" * SPEC.flash_size_bytes,
                           faults=BoardFaults())


def reg(board: VirtualSwdBoard, offset: int, value: int | None = None) -> int:
    address = FLASH_PAGE + FLASH_IF + offset
    if value is None:
        return board.bus.read(address, 4)
    board.bus.write(address, 4, value)
    return value


def unlock(board: VirtualSwdBoard) -> None:
    reg(board, KEYR, KEY1)
    reg(board, KEYR, KEY2)


def test_uid_flash_size_and_idcode() -> None:
    board = make_board()
    assert bytes(board.bus.read(0x1FFF7A10 + i, 1) for i in range(12)) == UID
    assert board.bus.read(0x1FFF7A22, 2) == 512
    assert board.bus.read(0xE0042000, 4) & 0xFFF == 0x431
    assert reg(board, CR) & CR_LOCK


def test_sector_erase_by_number() -> None:
    board = make_board(bytes(SPEC.flash_size_bytes))
    unlock(board)
    reg(board, CR, CR_SER | (4 << CR_SNB_SHIFT))
    reg(board, CR, CR_SER | (4 << CR_SNB_SHIFT) | CR_STRT)
    assert board.flash_bytes(FLASH + 0x10000, 0x10000) == b"\xff" * 0x10000
    assert board.flash_bytes(FLASH + 0xFFFF, 1) == b"\x00"
    assert board.flash_bytes(FLASH + 0x20000, 1) == b"\x00"


def test_program_size_must_match_psize() -> None:
    board = make_board()
    unlock(board)
    reg(board, CR, CR_PG | (2 << 8))  # PSIZE x32
    board.bus.write(FLASH, 2, 0x1234)
    assert reg(board, SR) & SR_PGPERR
    assert board.bus.read(FLASH, 4) == 0xFFFFFFFF
    board.bus.write(FLASH, 4, 0x12345678)
    assert board.bus.read(FLASH, 4) == 0x12345678


def test_wrong_key_locks_until_reset() -> None:
    board = make_board()
    with pytest.raises(BusFault):
        reg(board, KEYR, 0x1)
    unlock(board)
    board.core.reset()
    assert reg(board, CR) & CR_LOCK


def set_rdp(board: VirtualSwdBoard, rdp: int) -> None:
    reg(board, OPTKEYR, OPTKEY1)
    reg(board, OPTKEYR, OPTKEY2)
    optcr = reg(board, OPTCR)
    assert not optcr & OPTCR_OPTLOCK
    optcr = (optcr & ~0xFF00) | (rdp << 8)
    reg(board, OPTCR, optcr)
    reg(board, OPTCR, optcr | OPTCR_OPTSTRT)
    reg(board, OPTCR, optcr | OPTCR_OPTLOCK)


def test_rdp_level1_at_reset_and_back_to_level0_mass_erases() -> None:
    board = make_board(b"\x42" * SPEC.flash_size_bytes)
    reg(board, OPTCR, 0)  # ignored while OPTLOCK is set
    assert reg(board, OPTCR) & OPTCR_OPTLOCK
    set_rdp(board, 0x55)
    board.core.reset()
    with pytest.raises(BusFault, match="readout protection"):
        board.bus.read(FLASH, 4)
    unlock(board)
    reg(board, CR, CR_SER | (1 << CR_SNB_SHIFT) | CR_STRT)  # refused with a debugger attached
    assert reg(board, SR) & SR_WRPERR
    assert board.flash_bytes(FLASH + 0x4000, 4) == b"\x42" * 4
    set_rdp(board, 0xAA)
    board.core.reset()
    assert board.bus.read(FLASH, 4) == 0xFFFFFFFF
    assert (reg(board, OPTCR) >> 8) & 0xFF == 0xAA
