"""Peers nobody here wrote accept the virtual serial board: Debian stm32flash, PyPI stm32loader."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import serial
from serial_fixtures import CHIP_UID, serial_board

from hex_generator import Image, save
from hw_profiles import load_profile
from provisioner.flash.backend import MemorySegment, opened
from provisioner.flash.serial_rom.backend import SerialRomBackend

BASE = 0x08000000
IMAGE_BYTES = bytes((i * 7 + 3) & 0xFF for i in range(12 * 1024 + 100))


def _stm32flash(port: str, *args: str) -> str:
    tool = shutil.which("stm32flash")
    assert tool, "Debian's stm32flash must be installed for the peer tests"
    result = subprocess.run([tool, "-m", "8n1", *args, port], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("profile_name", ["stm32f103c8", "stm32f411ce"])
def test_stm32flash_identifies_writes_reads_back_and_erases(profile_name: str,
                                                            tmp_path: Path) -> None:
    image = Image()
    image.add(BASE, IMAGE_BYTES)
    hex_path, back = tmp_path / "image.hex", tmp_path / "back.bin"
    save(hex_path, image)
    profile = load_profile(profile_name)
    with serial_board(profile_name) as board:
        info = _stm32flash(board.port)
        assert f"Device ID    : 0x{profile.serial.product_id:04x}" in info  # type: ignore[union-attr]
        out = _stm32flash(board.port, "-w", str(hex_path), "-v")
        assert "Wrote and verified" in out
        assert board.flash_bytes(BASE, len(IMAGE_BYTES)) == IMAGE_BYTES
        _stm32flash(board.port, "-r", str(back), "-S", f"0x{BASE:08x}:{len(IMAGE_BYTES)}")
        assert back.read_bytes() == IMAGE_BYTES
        # our backend agrees with what stm32flash wrote, on the same pty afterwards
        with opened(SerialRomBackend(board.port, profile)) as backend:
            backend.verify([MemorySegment(BASE, IMAGE_BYTES)])
        _stm32flash(board.port, "-o")
        assert board.flash_bytes(BASE, len(IMAGE_BYTES)) == b"\xff" * len(IMAGE_BYTES)


class _PtyConnection:
    """What stm32loader's bootloader needs from a port, without reset/BOOT0 (a pty has neither)."""

    def __init__(self, port: str) -> None:
        self._serial = serial.Serial(port, 115200, timeout=1.0)

    @property
    def timeout(self) -> float | None:
        return self._serial.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._serial.timeout = value

    def write(self, *args: bytes) -> int | None:
        return self._serial.write(*args)

    def read(self, length: int = 1) -> bytes:
        return bytes(self._serial.read(length))

    def flush_input_buffer(self) -> None:
        self._serial.reset_input_buffer()

    def close(self) -> None:
        self._serial.close()


def test_stm32loader_library_identifies_writes_reads_back_and_erases() -> None:
    from stm32loader.bootloader import Stm32Bootloader  # GPL-3: a test peer, never product code

    data = IMAGE_BYTES[:4096]
    with serial_board() as board:
        connection = _PtyConnection(board.port)
        try:
            loader = Stm32Bootloader(connection, device_family="F1", verbosity=0)
            loader.reset_from_system_memory()
            version = loader.get()
            assert version == 0x22
            assert loader.extended_erase is False
            assert loader.get_id() == 0x410
            assert bytes(loader.read_memory_data(0x1FFFF7E8, 12)) == CHIP_UID
            loader.erase_memory([0, 1, 2, 3])
            loader.write_memory_data(BASE, bytearray(data))
            assert bytes(loader.read_memory_data(BASE, len(data))) == data
            assert board.flash_bytes(BASE, len(data)) == data
            loader.erase_memory(None)
            assert board.flash_bytes(BASE, len(data)) == b"\xff" * len(data)
            loader.readout_protect()
        finally:
            connection.close()
        assert board.readout_protected
