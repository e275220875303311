"""Crash consistency: SIGKILL the station right after it journals each state, restart, recover."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from station_fixtures import (
    STATION_PASSPHRASE,
    assert_board_matches_site,
    served_site,
    site_devices,
    site_grants,
)

from provisioner.demo import virtual_boards
from provisioner.site import catalogue
from provisioner.station.commands import PIN_ENV, STATION_PASSPHRASE_ENV
from provisioner.station.runner import CRASH_ENV
from provisioner.station.unlock import open_station

# Kill right after journaling each state (before its effect), and right after the effects that
# matter most (":after": the grant answer received but not journaled, the key persisted, the
# board fully programmed and verified, the site told but its answer not journaled).
CRASH_POINTS = [
    "detected", "uid_read", "uid_read:after", "granted", "granted:after", "key_derived",
    "flashing", "flashing:after", "verified", "locked", "reported", "reported:after",
]
# Where each crash leaves the device at the site once the station recovered.
PROGRAMMED_AFTER = {"flashing:after", "verified", "locked", "reported", "reported:after"}
NO_GRANT_AFTER = {"detected"}


def _station(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from provisioner.cli import main; main()", "station"]
    return subprocess.run([*command, *args],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_kill_at_every_state_then_recover(tmp_path: Path) -> None:
    with served_site(tmp_path) as site:
        station_dir = tmp_path / "station"
        site.enrol_station(station_dir, "station-crash", STATION_PASSPHRASE)
        order_id = site.add_order(len(CRASH_POINTS) + 1)
        env = {**os.environ, STATION_PASSPHRASE_ENV: STATION_PASSPHRASE, PIN_ENV: site.pin}
        common = ["--data-dir", str(station_dir)]
        # The AN3155 boards run in this process: they outlive the killed station process.
        with virtual_boards(len(CRASH_POINTS) + 1) as boards:
            for state, board in zip(CRASH_POINTS, boards, strict=False):
                crashed = _station(
                    ["run", *common, "--order", order_id, "--count", "1", "--port",
                     board.location, "--operator", site.operator_id],
                    {**env, CRASH_ENV: state},
                )
                assert crashed.returncode == -signal.SIGKILL, (state, crashed.stderr)
                recovered = _station(["recover", *common, "--port", board.location,
                                      "--operator", site.operator_id], env)
                assert recovered.returncode == 0, (state, recovered.stdout, recovered.stderr)
            # after all the crashes a clean run still works and takes a fresh index
            last = boards[-1]
            clean = _station(["run", *common, "--order", order_id, "--count", "1", "--port",
                              last.location, "--operator", site.operator_id], env)
            assert clean.returncode == 0, clean.stdout + clean.stderr

            devices = site_devices(site, order_id)
            grants = site_grants(site, order_id)
            for state, board in zip(CRASH_POINTS, boards, strict=False):
                device = devices.get(board.chip_uid.hex())
                if state in NO_GRANT_AFTER:
                    assert device is None, state
                    continue
                assert device is not None, state
                if state in PROGRAMMED_AFTER:
                    assert device.status == "programmed", state
                    assert_board_matches_site(board, device)
                else:
                    assert device.status == "failed", (state, device.status)
            assert_board_matches_site(last, devices[last.chip_uid.hex()])

        # no board lost: every grant has an outcome; no device counted twice; no index reused
        assert all(result is not None for _, _, result in grants), grants
        indices = [index for _, index, _ in grants]
        assert indices == sorted(set(indices))
        order = catalogue.show_order(site.server.context, order_id)
        assert (order.produced, order.reserved) == (len(PROGRAMMED_AFTER) + 1, 0)
        runner = open_station(station_dir, STATION_PASSPHRASE)  # checks the journal's MACs
        journal = runner.journal
        assert journal.open_attempts() == []
        journal_indices = [a.drbg_index for a in journal.latest() if a.grant_id is not None]
        assert sorted(journal_indices) == indices
        runner.close()
