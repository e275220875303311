"""The emulated STM32F1: FPEC per RM0008, option bytes and RDP, core halt/resume, DP/AP access."""

from __future__ import annotations

import pytest

from provisioner.sim.bus import BusFault
from provisioner.sim.stm32_fpec import (
    CR,
    CR_LOCK,
    CR_MER,
    CR_OPTER,
    CR_OPTPG,
    CR_OPTWRE,
    CR_PER,
    CR_PG,
    CR_STRT,
    FPEC_BASE,
    KEY1,
    KEY2,
    KEYR,
    OBR,
    OBR_OPTERR,
    OBR_RDPRT,
    OPTION_BYTES,
    OPTKEYR,
    SR,
    SR_EOP,
    SR_PGERR,
    SR_WRPRTERR,
    default_option_bytes,
)
from provisioner.sim.swd_board import ChipSpec, VirtualSwdBoard
from provisioner.sim.swd_dap import (
    CDBGPWRUPACK,
    CDBGPWRUPREQ,
    CSYSPWRUPACK,
    CSYSPWRUPREQ,
    DPIDR_CM3,
    STICKYERR,
    AckFault,
    AckWait,
    BoardFaults,
    NoAck,
)

FLASH = 0x08000000
SPEC = ChipSpec("stm32f103c8", FLASH, 0x10000, 0x400, 0x20000000, 0x5000, 0x1FFFF7E8, 12)
UID = bytes.fromhex("0102030405060708090a0b0c")


def make_board(*, content: bytes | None = None, faults: BoardFaults | None = None,
               option_bytes: bytearray | None = None) -> VirtualSwdBoard:
    return VirtualSwdBoard(SPEC, chip_uid=UID,
                           option_bytes=option_bytes or default_option_bytes(),
                           flash_content=content or b"\xff" * SPEC.flash_size_bytes,
                           faults=faults or BoardFaults())


def fpec(board: VirtualSwdBoard, offset: int, value: int | None = None) -> int:
    if value is None:
        return board.bus.read(FPEC_BASE + offset, 4)
    board.bus.write(FPEC_BASE + offset, 4, value)
    return value


def unlock(board: VirtualSwdBoard) -> None:
    fpec(board, KEYR, KEY1)
    fpec(board, KEYR, KEY2)


def test_fresh_chip_is_erased_with_uid_and_flash_size() -> None:
    board = make_board()
    assert board.bus.read(FLASH, 4) == 0xFFFFFFFF
    assert board.bus.read(0x0, 4) == 0xFFFFFFFF  # boot alias
    assert bytes(board.bus.read(0x1FFFF7E8 + i, 1) for i in range(12)) == UID
    assert board.bus.read(0x1FFFF7E0, 2) == 64
    assert fpec(board, CR) & CR_LOCK
    assert not fpec(board, OBR) & (OBR_RDPRT | OBR_OPTERR)


def test_program_needs_unlock_and_pg() -> None:
    board = make_board()
    fpec(board, CR, CR_PG)  # ignored while locked
    assert fpec(board, CR) == CR_LOCK
    board.bus.write(FLASH, 2, 0x1234)
    assert board.bus.read(FLASH, 2) == 0xFFFF
    assert fpec(board, SR) & SR_PGERR
    unlock(board)
    fpec(board, SR, SR_PGERR)
    fpec(board, CR, CR_PG)
    board.bus.write(FLASH + 2, 2, 0xBEEF)
    assert board.bus.read(FLASH, 4) == 0xBEEFFFFF
    assert fpec(board, SR) & SR_EOP


def test_programming_a_written_halfword_is_a_pgerr() -> None:
    board = make_board()
    unlock(board)
    fpec(board, CR, CR_PG)
    board.bus.write(FLASH, 2, 0x1234)
    board.bus.write(FLASH, 2, 0x5678)
    assert board.bus.read(FLASH, 2) == 0x1234
    assert fpec(board, SR) & SR_PGERR


def test_wrong_key_locks_until_reset() -> None:
    board = make_board()
    fpec(board, KEYR, KEY1)
    with pytest.raises(BusFault):
        fpec(board, KEYR, 0xDEADBEEF)
    with pytest.raises(BusFault):
        unlock(board)
    assert fpec(board, CR) & CR_LOCK
    board.core.reset()
    unlock(board)
    assert not fpec(board, CR) & CR_LOCK


def test_page_erase_clears_exactly_one_1k_page() -> None:
    board = make_board(content=bytes(SPEC.flash_size_bytes))
    unlock(board)
    fpec(board, CR, CR_PER)
    fpec(board, 0x14, FLASH + 0x400 + 0x10)  # AR anywhere inside page 1
    fpec(board, CR, CR_PER | CR_STRT)
    assert not fpec(board, CR) & CR_STRT  # STRT self-clears
    assert board.flash_bytes(FLASH + 0x400, 0x400) == b"\xff" * 0x400
    assert board.flash_bytes(FLASH + 0x3FF, 1) == b"\x00"
    assert board.flash_bytes(FLASH + 0x800, 1) == b"\x00"


def test_mass_erase() -> None:
    board = make_board(content=bytes(SPEC.flash_size_bytes))
    unlock(board)
    fpec(board, CR, CR_MER)
    fpec(board, CR, CR_MER | CR_STRT)
    assert board.flash_bytes(FLASH, SPEC.flash_size_bytes) == b"\xff" * SPEC.flash_size_bytes


def set_rdp(board: VirtualSwdBoard, rdp: int) -> None:
    unlock(board)
    fpec(board, OPTKEYR, KEY1)
    fpec(board, OPTKEYR, KEY2)
    assert fpec(board, CR) & CR_OPTWRE
    fpec(board, CR, CR_OPTWRE | CR_OPTER)
    fpec(board, CR, CR_OPTWRE | CR_OPTER | CR_STRT)
    fpec(board, CR, CR_OPTWRE | CR_OPTPG)
    for offset in range(0, 16, 2):
        board.bus.write(OPTION_BYTES + offset, 2, rdp if offset == 0 else 0xFF)
    fpec(board, CR, CR_LOCK)


def test_rdp_takes_effect_at_reset_and_removal_mass_erases() -> None:
    board = make_board(content=b"\x5a" * SPEC.flash_size_bytes)
    set_rdp(board, 0x00)
    assert board.bus.read(FLASH, 1) == 0x5A  # still readable until the option bytes reload
    board.core.reset()
    assert fpec(board, OBR) & OBR_RDPRT
    with pytest.raises(BusFault, match="readout protection"):
        board.bus.read(FLASH, 4)
    assert board.bus.read(OPTION_BYTES, 2) == 0xFF00  # option bytes stay readable
    set_rdp(board, 0xA5)
    board.core.reset()
    assert not fpec(board, OBR) & (OBR_RDPRT | OBR_OPTERR)
    assert board.bus.read(FLASH, 4) == 0xFFFFFFFF
    assert board.flash_bytes(FLASH, SPEC.flash_size_bytes) == b"\xff" * SPEC.flash_size_bytes


def test_protected_chip_refuses_writes_to_first_pages() -> None:
    board = make_board()
    set_rdp(board, 0x00)
    board.core.reset()
    unlock(board)
    fpec(board, CR, CR_PER)
    fpec(board, 0x14, FLASH)
    fpec(board, CR, CR_PER | CR_STRT)
    assert fpec(board, SR) & SR_WRPRTERR


def test_complement_mismatch_sets_opterr_and_protects() -> None:
    option_bytes = default_option_bytes()
    option_bytes[1] = 0x00  # nRDP no longer the complement of RDP
    board = make_board(option_bytes=option_bytes)
    assert fpec(board, OBR) & OBR_OPTERR
    assert fpec(board, OBR) & OBR_RDPRT


def test_dp_power_up_is_acknowledged() -> None:
    dap = make_board().dap
    assert dap.read_dp(0x0) == DPIDR_CM3
    dap.write_dp(0x4, CSYSPWRUPREQ | CDBGPWRUPREQ)
    acks = CSYSPWRUPACK | CDBGPWRUPACK
    assert dap.read_dp(0x4) & acks == acks
    dap.write_dp(0x4, 0)
    assert dap.read_dp(0x4) & acks == 0


def select_ap(dap: object, bank: int = 0) -> None:
    dap.write_dp(0x8, bank)  # type: ignore[attr-defined]


def test_mem_ap_word_reads_auto_increment_and_byte_lanes() -> None:
    content = bytes(range(256)) * (SPEC.flash_size_bytes // 256)
    dap = make_board(content=content).dap
    select_ap(dap)
    dap.write_ap(0x00, 0x23000012)  # 32-bit, single increment
    dap.write_ap(0x04, FLASH)
    assert [dap.read_ap(0x0C) for _ in range(2)] == [0x03020100, 0x07060504]
    assert dap.read_ap(0x04) == FLASH + 8
    dap.write_ap(0x00, 0x23000010)  # 8-bit
    dap.write_ap(0x04, FLASH + 2)
    assert dap.read_ap(0x0C) == 0x02 << 16  # byte 2 arrives on lane 2


def test_tar_wraps_at_4k() -> None:
    dap = make_board().dap
    select_ap(dap)
    dap.write_ap(0x00, 0x23000012)
    dap.write_ap(0x04, 0x20000FFC)
    dap.read_ap(0x0C)
    assert dap.read_ap(0x04) == 0x20000000


def test_bus_fault_sets_sticky_error_until_abort() -> None:
    board = make_board()
    set_rdp(board, 0x00)
    board.core.reset()
    dap = board.dap
    select_ap(dap)
    dap.write_ap(0x00, 0x23000012)
    dap.write_ap(0x04, FLASH)
    with pytest.raises(AckFault):
        dap.read_ap(0x0C)
    assert dap.read_dp(0x4) & STICKYERR
    with pytest.raises(AckFault):
        dap.read_ap(0x04)
    dap.write_dp(0x0, 1 << 2)  # ABORT.STKERRCLR
    assert dap.read_ap(0x04) == FLASH


def test_injected_faults() -> None:
    dap = make_board(faults=BoardFaults(fault_address=0x20000010, stall_after_transfers=4)).dap
    select_ap(dap)
    dap.write_ap(0x00, 0x23000012)
    dap.write_ap(0x04, 0x20000010)
    with pytest.raises(AckFault):
        dap.read_ap(0x0C)
    dap.write_dp(0x0, 1 << 2)
    dap.read_ap(0x04)
    with pytest.raises(AckWait):
        dap.read_ap(0x04)
    dap.faults.no_target = True
    with pytest.raises(NoAck):
        dap.read_dp(0x0)


def test_core_runs_to_bkpt_and_reports_halt() -> None:
    board = make_board()
    bus = board.bus
    # movs r0, #42 ; bkpt #0
    bus.write(0x20000000, 4, 0xBE00202A)
    bus.write(0xE000EDF0, 4, 0xA05F0003)  # C_DEBUGEN | C_HALT
    assert bus.read(0xE000EDF0, 4) & (1 << 17)
    bus.write(0xE000EDF8, 4, 0x20000001)
    bus.write(0xE000EDF4, 4, (1 << 16) | 15)  # PC
    bus.write(0xE000EDF0, 4, 0xA05F0001)  # resume
    dhcsr = bus.read(0xE000EDF0, 4)
    assert dhcsr & (1 << 17)  # S_HALT
    assert dhcsr & 0x2  # C_HALT reads back while halted
    bus.write(0xE000EDF4, 4, 0)  # read R0
    assert bus.read(0xE000EDF8, 4) == 42
    assert bus.read(0xE000ED30, 4) & 0x2  # DFSR.BKPT


def run_store(board: VirtualSwdBoard, address: int, value: int) -> None:
    """Let the core execute ``strh r1, [r0]; bkpt #0`` from RAM."""
    bus = board.bus
    bus.write(0x20000000, 4, 0xBE008001)
    bus.write(0xE000EDF0, 4, 0xA05F0003)
    for regsel, reg_value in ((0, address), (1, value), (15, 0x20000000), (16, 0x01000000)):
        bus.write(0xE000EDF8, 4, reg_value)
        bus.write(0xE000EDF4, 4, (1 << 16) | regsel)
    bus.write(0xE000EDF0, 4, 0xA05F0001)
    assert bus.read(0xE000EDF0, 4) & (1 << 17)


def test_core_stores_reach_flash_only_through_the_fpec() -> None:
    board = make_board()
    run_store(board, FLASH + 0x10, 0x1234)  # PG clear: the cell must not change
    assert board.flash_bytes(FLASH + 0x10, 2) == b"\xff\xff"
    assert fpec(board, SR) & SR_PGERR
    unlock(board)
    fpec(board, CR, CR_PG)
    run_store(board, FLASH + 0x10, 0x1234)
    assert board.flash_bytes(FLASH + 0x10, 2) == b"\x34\x12"
    run_store(board, 0x0 + 0x10, 0x5678)  # through the boot alias, onto a programmed cell
    assert board.flash_bytes(FLASH + 0x10, 2) == b"\x34\x12"


def test_reset_boots_the_firmware_from_the_vector_table() -> None:
    firmware = (0x20005000).to_bytes(4, "little") + (0x08000009).to_bytes(4, "little")
    firmware += bytes.fromhex("2a2000be")  # movs r0, #42 ; bkpt #0
    board = make_board(content=firmware + b"\xff" * (SPEC.flash_size_bytes - len(firmware)))
    bus = board.bus
    bus.write(0xE000EDF0, 4, 0xA05F0001)  # debugger attached, core not halted
    bus.write(0xE000ED0C, 4, 0x05FA0004)  # AIRCR.SYSRESETREQ
    assert bus.read(0xE000EDF0, 4) & (1 << 17)  # ran into the BKPT
    bus.write(0xE000EDF4, 4, 0)
    assert bus.read(0xE000EDF8, 4) == 42
    bus.write(0xE000EDF4, 4, 13)
    assert bus.read(0xE000EDF8, 4) == 0x20005000
