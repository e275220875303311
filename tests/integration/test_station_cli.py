"""`provisioner station enroll|status|run` through click, against a served site."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner
from station_fixtures import TEST_SCRYPT_N, served_site, site_devices

from provisioner.demo import virtual_boards
from provisioner.site import admin
from provisioner.station.commands import (
    ENROL_PASSPHRASE_ENV,
    PIN_ENV,
    STATION_PASSPHRASE_ENV,
    station_group,
)
from provisioner.station.runner import StationRunner
from provisioner.station.ui import app as ui_app


def test_enroll_status_run_ui_and_refusals(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cli = CliRunner()
    station_dir = tmp_path / "station"
    with served_site(tmp_path) as site:
        enrolment = admin.add_station(site.server.context, site.site_dir, "station-cli",
                                      site.url, scrypt_n=TEST_SCRYPT_N)
        env = {ENROL_PASSPHRASE_ENV: enrolment.passphrase,
               STATION_PASSPHRASE_ENV: "station passphrase 1", PIN_ENV: site.pin}
        wrong = cli.invoke(station_group, ["enroll", str(enrolment.bundle_path), "--data-dir",
                                           str(station_dir)],
                           env={**env, ENROL_PASSPHRASE_ENV: "0000-0000-0000-0000-0000-0000"})
        assert wrong.exit_code != 0
        assert "wrong passphrase" in wrong.output
        enrolled = cli.invoke(station_group, ["enroll", str(enrolment.bundle_path),
                                              "--data-dir", str(station_dir)], env=env)
        assert enrolled.exit_code == 0, enrolled.output
        config = (station_dir / "station.json").read_text()
        assert "BEGIN CERTIFICATE" in config
        assert "PRIVATE KEY" not in config
        assert "overwritten and removed" in enrolled.output
        assert not enrolment.bundle_path.exists()

        status = cli.invoke(station_group, ["status", "--data-dir", str(station_dir)], env=env)
        assert status.exit_code == 0, status.output
        assert "station_id: station-cli" in status.output
        assert f"site: {site.url}" in status.output
        assert "next drbg_index: 0" in status.output

        order_id = site.add_order(1)
        with virtual_boards(2) as boards:
            args = ["run", "--data-dir", str(station_dir), "--order", order_id, "--count", "2",
                    "--operator", site.operator_id]
            for board in boards:
                args += ["--port", board.location]
            run = cli.invoke(station_group, args, env=env)
            assert run.exit_code == 1, run.output  # the second board exceeds the quantity
            lines = run.output.splitlines()
            assert sum(line.startswith("PASS ") for line in lines) == 1
            assert any("code=quota_exhausted" in line for line in lines)
            assert "summary: 1 passed, 1 failed of 2" in run.output
        assert len(site_devices(site, order_id)) == 1
        status = cli.invoke(station_group, ["status", "--data-dir", str(station_dir)], env=env)
        assert "next drbg_index: 1" in status.output

        # no subcommand: the operator UI gets the unlocked runner and one factory per board
        seen: dict[str, object] = {}

        def fake_run_ui(runner: StationRunner, boards: Mapping[str, object]) -> int:
            seen["orders"] = [o.order_id for o in (runner.sign_in(site.operator_id, site.pin),
                                                   runner.list_orders())[1]]
            seen["boards"] = sorted(boards)
            return 3

        monkeypatch.setattr(ui_app, "run_ui", fake_run_ui)
        ui = cli.invoke(station_group, ["--data-dir", str(station_dir), "--port", "/dev/null-a",
                                        "--probe", "VSWD9"], env=env)
        assert ui.exit_code == 3, ui.output
        assert seen == {"orders": [order_id], "boards": ["/dev/null-a", "VSWD9"]}

        no_board = cli.invoke(station_group, ["run", "--data-dir", str(station_dir), "--order",
                                              order_id, "--count", "1", "--operator", "x"],
                              env=env)
        assert no_board.exit_code == 2
        assert "--port or --probe" in no_board.output
