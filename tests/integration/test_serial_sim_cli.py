"""`provisioner sim serial` serves a board other processes flash; the HIL tests pass against it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from hw_profiles import load_profile
from provisioner.flash.backend import MemorySegment, opened
from provisioner.flash.serial_rom.backend import SerialRomBackend

ROOT = Path(__file__).resolve().parents[2]
SERVE = "from provisioner.sim.commands import sim_group; sim_group()"


def test_sim_serial_prints_its_pty_and_serves_until_interrupted() -> None:
    uid = "00112233445566778899aabb"
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serial", "--profile", "stm32f103c8", "--chip-uid", uid],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        assert port.startswith("/dev/pts/")
        with opened(SerialRomBackend(port, load_profile("stm32f103c8"))) as backend:
            assert backend.read_uid().hex() == uid
        env = {**os.environ, "PROVISIONER_HIL_SERIAL_PORT": port,
               "PROVISIONER_HIL_PROFILE": "stm32f103c8"}
        hil = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "hil",
             "tests/hil/test_hil_serial.py"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert hil.returncode == 0, hil.stdout + hil.stderr
        assert "3 passed" in hil.stdout
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=10)
    assert server.returncode == 0
    assert "stopped" in err


def test_sigusr1_swaps_a_blank_chip_in_behind_the_same_pty() -> None:
    profile = load_profile("stm32f103c8")
    uid = "00112233445566778899aabb"
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serial", "--profile", profile.name, "--chip-uid", uid],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert server.stdout is not None
        assert server.stderr is not None
        port = server.stdout.readline().strip()
        assert f"kill -USR1 {server.pid} swaps in a new chip" in server.stderr.readline()
        with opened(SerialRomBackend(port, profile)) as backend:
            backend.program([MemorySegment(profile.flash.base, b"\x5a" * 16)])
        server.send_signal(signal.SIGUSR1)
        said = server.stderr.readline()
        assert said.startswith("chip replaced: chip_uid ")
        new_uid = said.split()[3]
        assert new_uid != uid
        with opened(SerialRomBackend(port, profile)) as backend:
            assert backend.read_uid().hex() == new_uid
            assert backend.read(profile.flash.base, 16) == b"\xff" * 16  # a blank chip
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=10)
    assert server.returncode == 0


def test_sim_swap_chip_replaces_the_chip_behind_a_virtual_probe(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from provisioner.sim.commands import sim_group
    from provisioner.sim.swd_board import create_virtual_board, load_board

    old = bytes.fromhex("34ff6e063052323830461543")
    create_virtual_board(tmp_path, "VSWD0007", "stm32f103c8", old)
    result = CliRunner().invoke(sim_group, ["swap-chip", "--dir", str(tmp_path),
                                            "--probe-uid", "VSWD0007"])
    assert result.exit_code == 0, result.output
    board = load_board(tmp_path, "VSWD0007")
    assert board.chip_uid != old
    assert f"chip UID {board.chip_uid.hex()}, blank" in result.output
    missing = CliRunner().invoke(sim_group, ["swap-chip", "--dir", str(tmp_path),
                                             "--probe-uid", "VSWD0404"])
    assert missing.exit_code == 1
    assert missing.output.startswith("Error: ")
    assert "Traceback" not in missing.output
