"""Device-initiated mode: the reference device asks the site itself at boot and on a schedule."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from update_fixtures import PROVISIONER, UpdateWorld, app_image, update_world

from provisioner.sim.device.records import Event
from provisioner.update.versions import parse_version

V110 = app_image("release 1.1.0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check_in(w: UpdateWorld, *extra: str,
              site_url: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROVISIONER, "sim", "device", "check-in", "--dir", str(w.board_dir),
         "--probe-uid", "VSWD0000", "--manufacturer-key", str(w.key_path),
         "--site", site_url or w.updates.url, "--ca", str(w.ca_path), *extra],
        capture_output=True, text=True, timeout=120, check=False)


def test_the_device_updates_itself_at_boot_then_finds_itself_up_to_date(tmp_path: Path) -> None:
    with update_world(tmp_path, 1) as (w, _chips):
        done = _check_in(w)  # no release yet: up to date, nothing delivered
        assert done.returncode == 0, done.stderr
        assert "up to date" in done.stdout
        w.add_release("1.1.0", V110)
        done = _check_in(w)
        assert done.returncode == 0, done.stderr
        assert "device installed" in done.stdout
        device = w.device("VSWD0000")
        assert device.state.running_version == parse_version("1.1.0")
        assert device.slot_bytes(1, len(V110)) == V110
        assert Event.result_reported in [r.event for r in device.log()]
        assert [a["device_id"] for a in w.audit("update_installed")] == [device.device_id]
        refused = len(w.audit("update_refused"))
        done = _check_in(w, "--every", "0.2", "--count", "2")
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("up to date") == 2
        assert "runs 1.1.0" in done.stdout
        assert len(w.audit("update_refused")) == refused + 2
        assert w.deliveries() == 1


def test_a_check_in_the_site_does_not_answer_fails_and_changes_nothing(tmp_path: Path) -> None:
    with update_world(tmp_path, 1) as (w, _chips):
        w.add_release("1.1.0", V110)
        done = _check_in(w, site_url=f"https://127.0.0.1:{free_port()}")
        assert done.returncode != 0
        assert "check-in 1 failed" in done.stderr
        assert "runs 0.0.0" in done.stdout
        assert w.deliveries() == 0
