"""SerialRomBackend against the virtual AN3155 board on a real pseudo-terminal."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from serial_fixtures import CHIP_UID, fixture_segments, serial_board

from hex_generator import load
from hw_profiles import load_profile
from provisioner.errors import (
    AddressOutOfRange,
    BoardDisconnected,
    BootloaderNack,
    ChipMismatch,
    ReadoutProtected,
    VerifyMismatch,
)
from provisioner.flash.backend import FlashBackend, MemorySegment, Operation, ProgressEvent, opened
from provisioner.flash.registry import build_registry
from provisioner.flash.serial_rom.backend import SerialRomBackend


@pytest.mark.parametrize("profile_name", ["stm32f103c8", "stm32f411ce", "stm32l432kc"])
def test_write_read_verify_protect_unprotect(profile_name: str) -> None:
    profile = load_profile(profile_name)
    segments = fixture_segments(profile)
    events: list[ProgressEvent] = []
    with serial_board(profile_name) as board, opened(SerialRomBackend(board.port, profile)
                                                     ) as backend:
        assert backend.read_uid() == CHIP_UID[:profile.chip_uid.size_bytes]
        assert backend.capabilities.readout_protection_levels == (0, 1)
        backend.erase([(s.start, s.end) for s in segments], events.append)
        backend.program(segments, events.append)
        backend.verify(segments, events.append)
        for seg in segments:
            assert backend.read(seg.start, len(seg.data)) == seg.data
            assert board.flash_bytes(seg.start, len(seg.data)) == seg.data
        flipped = bytearray(segments[0].data)
        at = min(777, len(flipped) - 3)  # an unaligned offset inside the (maybe small) image
        flipped[at] ^= 0x40
        with pytest.raises(VerifyMismatch) as mismatch:
            backend.verify([MemorySegment(segments[0].start, flipped)])
        assert mismatch.value.address == segments[0].start + at
        assert f"0x{segments[0].start + at:08X}" in str(mismatch.value)
        backend.protect(1)
        assert board.readout_protected
        with pytest.raises(ReadoutProtected):
            backend.read(segments[0].start, 16)
        backend.protect(0)
        assert not board.readout_protected
        assert backend.read(segments[0].start, 256) == b"\xff" * 256
    assert {e.operation for e in events} == {Operation.erase, Operation.program, Operation.verify}
    program = [e for e in events if e.operation is Operation.program]
    assert program[-1].done_bytes == program[-1].total_bytes == sum(len(s.data) for s in segments)


@pytest.mark.parametrize("extended", [False, True])
def test_page_and_mass_erase_with_either_erase_command(extended: bool) -> None:
    profile = load_profile("stm32f103c8")
    with serial_board(extended_erase=extended) as board, opened(
            SerialRomBackend(board.port, profile)) as backend:
        backend.program([MemorySegment(0x08000000, b"\x00" * 4096)])
        backend.erase([(0x08000400, 0x08000401)])  # one 1 KiB page
        assert board.flash_bytes(0x08000000, 1024) == b"\x00" * 1024
        assert board.flash_bytes(0x08000400, 1024) == b"\xff" * 1024
        assert board.flash_bytes(0x08000800, 2048) == b"\x00" * 2048
        backend.erase(None)
        assert board.flash_bytes(0x08000000, 4096) == b"\xff" * 4096


def test_odd_sized_tail_and_out_of_range_segments() -> None:
    profile = load_profile("stm32f103c8")
    with serial_board() as board, opened(SerialRomBackend(board.port, profile)) as backend:
        backend.program([MemorySegment(0x08000101, b"\x12\x34\x56")])
        assert board.flash_bytes(0x08000100, 8) == b"\xff\x12\x34\x56\xff\xff\xff\xff"
        with pytest.raises(AddressOutOfRange):
            backend.program([MemorySegment(0x08010000 - 2, b"\x00" * 4)])


def test_wrong_chip_is_refused_with_both_product_ids() -> None:
    with serial_board("stm32f411ce") as board:
        backend = SerialRomBackend(board.port, load_profile("stm32f103c8"))
        with pytest.raises(ChipMismatch) as exc:
            backend.open()
        backend.close()
    assert (exc.value.expected_pid, exc.value.found_pid) == (0x410, 0x431)


def test_registry_builds_the_serial_backend() -> None:
    registry = build_registry()
    assert registry.transports == ("serial", "swd")
    with serial_board() as board:
        backend = registry.create("serial", port=board.port, profile=load_profile("stm32f103c8"))
        assert isinstance(backend, FlashBackend)
        assert isinstance(backend, SerialRomBackend)
        with opened(backend):
            assert backend.read_uid() == CHIP_UID


def test_flash_cli_write_info_read_erase_protect(tmp_path: object) -> None:
    from pathlib import Path

    from serial_fixtures import ROOT

    from provisioner.flash.commands import flash_group

    out = Path(str(tmp_path)) / "read.bin"
    runner = CliRunner()
    with serial_board() as board:
        base = ["--port", board.port, "--profile", "stm32f103c8"]
        hex_path = str(ROOT / "fixtures" / "stm32f103c8" / "application.hex")
        result = runner.invoke(flash_group, [*base, "write", hex_path])
        assert result.exit_code == 0, result.output
        assert "verified" in result.output
        result = runner.invoke(flash_group, [*base, "info"])
        assert result.exit_code == 0
        assert CHIP_UID.hex() in result.output
        assert "0x410" in result.output
        app_start = load(hex_path).min_address  # slot A, after the bootloader region
        result = runner.invoke(flash_group, [*base, "read", f"0x{app_start:08X}", "0x3000",
                                             "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_bytes() == board.flash_bytes(app_start, 0x3000) != b"\xff" * 0x3000
        result = runner.invoke(flash_group, [*base, "protect", "1"])
        assert result.exit_code == 0
        assert board.readout_protected
        result = runner.invoke(flash_group, [*base, "read", "0x08000000", "16", "-o", str(out)])
        assert result.exit_code == 1
        assert result.output.strip().splitlines()[-1] == (
            "Error: read refused: the chip is readout-protected")
        result = runner.invoke(flash_group, [*base, "--debug", "read", "0x08000000", "16",
                                             "-o", str(out)])
        assert isinstance(result.exception, ReadoutProtected)
        assert runner.invoke(flash_group, [*base, "protect", "0"]).exit_code == 0
        result = runner.invoke(flash_group, [*base, "erase", "--all"])
        assert result.exit_code == 0
        assert board.flash_bytes(0x08000000, 0x3000) == b"\xff" * 0x3000
    result = runner.invoke(flash_group, ["--profile", "stm32f103c8", "info"])
    assert result.exit_code == 2
    assert "--port or --probe" in result.output


def test_write_protection_go_and_get_version() -> None:
    profile = load_profile("stm32f103c8")
    with serial_board() as board:
        backend = SerialRomBackend(board.port, profile)
        with opened(backend):
            assert backend.get_version() == (0x22, b"\xa5\x5a")
            board.write_protected.add(1)
            with pytest.raises(BootloaderNack) as nack:
                backend.program([MemorySegment(0x08000400, b"\x00" * 16)])
            assert (nack.value.phase, nack.value.address) == ("after the data", 0x08000400)
            backend.write_unprotect()
            assert not board.write_protected
            backend.program([MemorySegment(0x08000400, b"\x00" * 16)])
            backend.protect(1)
            assert backend.get_version()[1] == b"\x00\xff"
            with pytest.raises(ReadoutProtected):
                backend.program([MemorySegment(0x08000800, b"\x00" * 16)])
            backend.protect(0)
            backend.go(0x08000000)  # the bootloader hands over and stops answering
        with opened(backend):  # a fresh sync brings it back
            assert backend.read(0x08000400, 16) == b"\xff" * 16


def test_a_missing_port_is_a_disconnected_board() -> None:
    backend = SerialRomBackend("/dev/does-not-exist", load_profile("stm32f103c8"))
    with pytest.raises(BoardDisconnected) as exc:
        backend.open()
    assert exc.value.location == "/dev/does-not-exist"
    assert str(exc.value).startswith("board disconnected from /dev/does-not-exist")
    backend.close()


def test_a_board_that_vanishes_mid_session_is_disconnected_not_a_probe_error() -> None:
    profile = load_profile("stm32f103c8")
    with serial_board() as board:
        backend = SerialRomBackend(board.port, profile)
        backend.open()
        board.stop()  # the pty goes away under the open port (USB cable pulled)
        with pytest.raises(BoardDisconnected) as exc:
            backend.read(profile.flash.base, 16)
        assert exc.value.location == board.port
        backend.close()
