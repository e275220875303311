"""Shared helpers for the serial-board tests: a virtual board on a pty and the fixture image."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hex_generator import load
from hw_profiles import Profile, load_profile
from provisioner.flash.backend import MemorySegment
from provisioner.sim.an3155_board import BoardFaults, VirtualSerialBoard

ROOT = Path(__file__).resolve().parents[2]
CHIP_UID = bytes.fromhex("0123456789abcdef00112233")


def fixture_segments(profile: Profile) -> list[MemorySegment]:
    """Return the profile's application fixture as memory segments."""
    image = load(ROOT / "fixtures" / profile.name / "application.hex")
    return [MemorySegment(s.start, bytes(s.data)) for s in image.segments()]


@contextmanager
def serial_board(profile_name: str = "stm32f103c8", *, faults: BoardFaults | None = None,
                 **options: object) -> Iterator[VirtualSerialBoard]:
    """Serve a virtual AN3155 board for the duration of the block."""
    profile = load_profile(profile_name)
    board = VirtualSerialBoard(profile, chip_uid=CHIP_UID[:profile.chip_uid.size_bytes],
                               faults=faults, **options)  # type: ignore[arg-type]
    board.start()
    try:
        yield board
    finally:
        board.stop()
