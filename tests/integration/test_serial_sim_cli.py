"""`provisioner sim serial` serves a board other processes flash; the HIL tests pass against it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from hw_profiles import load_profile
from provisioner.flash.backend import opened
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
