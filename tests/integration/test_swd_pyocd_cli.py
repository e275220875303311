"""pyOCD's own command line accepts the virtual SWD boards: list, flash, read back, unlock."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from intelhex import IntelHex

from hw_profiles import load_profile
from provisioner.sim.nrf52_nvmc import CONFIG, CONFIG_REN, CONFIG_WEN, NVMC_BASE, UICR_BASE
from provisioner.sim.swd_board import create_virtual_board, load_board, save_board, state_paths
from provisioner.sim.swd_probe import ENV_VAR, PLUGIN_NAME

PROBE = "VSWD0042"
UID = bytes(range(0x10, 0x1C))
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PYOCD = shutil.which("pyocd")

pytestmark = pytest.mark.skipif(PYOCD is None, reason="the pyocd command is not installed")


def pyocd(*args: str, directory: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    if directory is not None:
        env[ENV_VAR] = str(directory)
    return subprocess.run([str(PYOCD), *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture(params=["stm32f103c8", "stm32f411ce", "nrf52840"])
def profile_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def board_dir(tmp_path: Path, profile_name: str) -> Path:
    boards = tmp_path / "boards"
    create_virtual_board(boards, PROBE, profile_name,
                         UID[:load_profile(profile_name).chip_uid.size_bytes])
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
    hex_path = FIXTURES / profile_name / "application.hex"  # flash base + 0x2000..0x5000
    image = IntelHex(str(hex_path))  # read by a peer library, not by our hex_generator
    start, end = image.minaddr(), image.maxaddr() + 1
    data = bytes(image.tobinarray(start=start, end=end - 1))
    profile = load_profile(profile_name)
    swd, base = profile.swd, profile.flash.base
    assert swd is not None
    target = ["-t", swd.pyocd_target, "-u", f"{PLUGIN_NAME}:{PROBE}"]

    flashed = pyocd("flash", *target, str(hex_path), directory=board_dir)
    assert flashed.returncode == 0, flashed.stderr
    assert state_paths(board_dir, PROBE)[1].read_bytes()[start - base:end - base] == data

    dump = tmp_path / "dump.bin"
    uid = profile.chip_uid
    read = pyocd("cmd", *target, "-c", f"savemem 0x{start:08x} {len(data) + 16} {dump}",
                 "-c", f"read8 0x{uid.base:x} {uid.size_bytes}", directory=board_dir)
    assert read.returncode == 0, read.stderr
    assert dump.read_bytes() == data + b"\xff" * 16
    assert "10 11 12 13" in read.stdout  # the chip UID through pyOCD's memory read


def test_pyocd_unlocks_a_protected_nrf52_through_the_ctrl_ap(tmp_path: Path) -> None:
    boards = tmp_path / "boards"
    create_virtual_board(boards, PROBE, "nrf52840", UID[:8])
    board = load_board(boards, PROBE)  # firmware-style: program, then APPROTECT via the NVMC
    board.bus.write(NVMC_BASE + CONFIG, 4, CONFIG_WEN)
    board.bus.write(0x2000, 4, 0x12345678)
    board.bus.write(UICR_BASE + 0x208, 4, 0xFFFFFF00)
    board.bus.write(NVMC_BASE + CONFIG, 4, CONFIG_REN)
    save_board(boards, PROBE, board)
    target = ["-t", "nrf52840", "-u", f"{PLUGIN_NAME}:{PROBE}"]

    refused = pyocd("cmd", *target, "-c", "read32 0x2000", directory=boards)
    assert refused.returncode != 0  # pyOCD's commander does not unlock unless told to
    assert "APPROTECT enabled: not automatically unlocking" in refused.stderr
    assert state_paths(boards, PROBE)[1].read_bytes()[0x2000:0x2004] == bytes.fromhex("78563412")

    unlocked = pyocd("cmd", *target, "-O", "auto_unlock=true", "-c", "read32 0x2000",
                     "-c", "read32 0x10001208", directory=boards)
    assert unlocked.returncode == 0, unlocked.stderr
    assert "will try to unlock via mass erase" in unlocked.stderr
    assert "00002000:  ffffffff" in unlocked.stdout
    assert "10001208:  ffffffff" in unlocked.stdout  # ERASEALL cleared UICR.APPROTECT
    assert state_paths(boards, PROBE)[1].read_bytes() == b"\xff" * 0x100000
