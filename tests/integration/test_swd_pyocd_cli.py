"""pyOCD's own command line accepts the virtual SWD board: list, flash a hex, read it back."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from intelhex import IntelHex

from hw_profiles import load_profile
from provisioner.sim.swd_board import create_virtual_board, state_paths
from provisioner.sim.swd_probe import ENV_VAR, PLUGIN_NAME

PROBE = "VSWD0042"
UID = bytes(range(0x10, 0x1C))
FLASH = 0x08000000
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PYOCD = shutil.which("pyocd")

pytestmark = pytest.mark.skipif(PYOCD is None, reason="the pyocd command is not installed")


def pyocd(*args: str, directory: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    if directory is not None:
        env[ENV_VAR] = str(directory)
    return subprocess.run([str(PYOCD), *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture(params=["stm32f103c8", "stm32f411ce"])
def profile_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def board_dir(tmp_path: Path, profile_name: str) -> Path:
    boards = tmp_path / "boards"
    create_virtual_board(boards, PROBE, profile_name, UID)
    return boards


def test_pyocd_list_shows_virtual_probe_only_when_enabled(tmp_path: Path) -> None:
    board_dir = tmp_path / "boards"
    create_virtual_board(board_dir, PROBE, "stm32f103c8", UID)
    listed = pyocd("list", directory=board_dir)
    assert listed.returncode == 0, listed.stderr
    assert PROBE in listed.stdout
    assert "virtual SWD probe" in listed.stdout
    hidden = pyocd("list", directory=None)
    assert PROBE not in hidden.stdout


def test_pyocd_flash_then_commander_reads_it_back(board_dir: Path, tmp_path: Path,
                                                  profile_name: str) -> None:
    hex_path = FIXTURES / profile_name / "application.hex"  # 0x08002000..0x08005000
    image = IntelHex(str(hex_path))  # read by a peer library, not by our hex_generator
    start, end = image.minaddr(), image.maxaddr() + 1
    data = bytes(image.tobinarray(start=start, end=end - 1))
    swd = load_profile(profile_name).swd
    assert swd is not None
    target = ["-t", swd.pyocd_target, "-u", f"{PLUGIN_NAME}:{PROBE}"]

    flashed = pyocd("flash", *target, str(hex_path), directory=board_dir)
    assert flashed.returncode == 0, flashed.stderr
    assert state_paths(board_dir, PROBE)[1].read_bytes()[start - FLASH:end - FLASH] == data

    dump = tmp_path / "dump.bin"
    uid_address = load_profile(profile_name).chip_uid.base
    read = pyocd("cmd", *target, "-c", f"savemem 0x{start:08x} {len(data) + 16} {dump}",
                 "-c", f"read8 0x{uid_address:x} 12", directory=board_dir)
    assert read.returncode == 0, read.stderr
    assert dump.read_bytes() == data + b"\xff" * 16
    assert "10 11 12 13" in read.stdout  # the chip UID through pyOCD's memory read
