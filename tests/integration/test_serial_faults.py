"""Every fault of the virtual serial board gives its specific error; the next run recovers."""

from __future__ import annotations

import pytest
from serial_fixtures import ROOT, serial_board

from hex_generator import load
from hw_profiles import load_profile
from provisioner.errors import BootloaderNack, FlashError, GarbledReply, LinkTimeout
from provisioner.flash.backend import FlashBackend, MemorySegment, opened
from provisioner.flash.serial_rom.backend import SerialRomBackend
from provisioner.flash.serial_rom.protocol import Command
from provisioner.sim.faults import BoardFaults

PROFILE = load_profile("stm32f103c8")
# The bootloader template: big enough for faults 1 and 2 KiB in (the application is 440 bytes).
SEGMENTS = [MemorySegment(s.start, bytes(s.data)) for s in
            load(ROOT / "fixtures" / PROFILE.name / "bootloader.hex").segments()]
START = SEGMENTS[0].start
FAULTS = {
    "nack_get_id": (BoardFaults(nack_command=Command.get_id),
                    BootloaderNack, "get_id", "after the command", None),
    "nack_write_data": (BoardFaults(nack_write_at=START + 0x400),
                        BootloaderNack, "write", "after the data", START + 0x400),
    "garbled_read": (BoardFaults(garble_command=Command.read_memory),
                     GarbledReply, "read_uid", "after the command", None),
    "dropped_ack": (BoardFaults(drop_command=Command.write_memory),
                    LinkTimeout, "write", "after the command", START),
    "stall": (BoardFaults(stall_command=Command.get, stall_s=1.3),
              LinkTimeout, "get", "after the command", None),
    "power_loss": (BoardFaults(power_loss_at=START + 0x800, power_loss_after_bytes=64),
                   LinkTimeout, "write", "after the data", START + 0x800),
}


def _provision(backend: FlashBackend) -> None:
    backend.read_uid()
    backend.erase([(s.start, s.end) for s in SEGMENTS])
    backend.program(SEGMENTS)
    backend.verify(SEGMENTS)


def _provision_once(port: str) -> None:
    with opened(SerialRomBackend(port, PROFILE)) as backend:
        _provision(backend)


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_gives_its_error_and_the_next_run_recovers(name: str) -> None:
    faults, error, command, phase, address = FAULTS[name]
    with serial_board(faults=faults) as board:
        with pytest.raises(FlashError) as exc:
            _provision_once(board.port)
        assert type(exc.value) is error
        assert (exc.value.command, exc.value.phase) == (command, phase)  # type: ignore[attr-defined]
        if address is not None:
            assert exc.value.address == address  # type: ignore[attr-defined]
            assert f"0x{address:08X}" in str(exc.value)
        with opened(SerialRomBackend(board.port, PROFILE)) as again:
            _provision(again)
        seg = SEGMENTS[0]
        assert board.flash_bytes(seg.start, len(seg.data)) == seg.data


def test_power_loss_leaves_a_partly_written_page() -> None:
    data = bytes(range(256)) * 4
    faults = BoardFaults(power_loss_at=0x08000100, power_loss_after_bytes=64)
    with serial_board(faults=faults) as board:
        with opened(SerialRomBackend(board.port, PROFILE)) as backend, pytest.raises(LinkTimeout):
            backend.program([MemorySegment(0x08000000, data)])
        page = board.flash_bytes(0x08000000, 1024)
        assert page[:256 + 64] == data[:256 + 64]
        assert page[256 + 64:] == b"\xff" * (1024 - 256 - 64)
