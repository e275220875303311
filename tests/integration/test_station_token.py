"""`station enroll --pkcs11-module …`: the station's secrets sealed on a SoftHSM2 token; the
station programs a board with it, and a copy of its data directory without the token opens
nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hsm_fixtures import USER_PIN, make_softhsm
from station_fixtures import TEST_SCRYPT_N, served_site, site_devices

from provisioner.demo import virtual_boards
from provisioner.hsm.errors import TokenNotFound, WrongTokenPin
from provisioner.hsm.pin import PIN_ENV as TOKEN_PIN_ENV
from provisioner.site import admin
from provisioner.station.commands import ENROL_PASSPHRASE_ENV, PIN_ENV, station_group
from provisioner.station.unlock import open_station


def test_station_sealed_on_a_token_programs_and_a_stolen_disk_opens_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    hsm = make_softhsm(tmp_path / "hsm", monkeypatch)
    hsm.init_token("station-token")
    cli = CliRunner()
    station_dir = tmp_path / "station"
    with served_site(tmp_path) as site:
        enrolment = admin.add_station(site.server.context, site.site_dir, "station-hsm",
                                      site.url, scrypt_n=TEST_SCRYPT_N)
        env = {ENROL_PASSPHRASE_ENV: enrolment.passphrase, TOKEN_PIN_ENV: USER_PIN,
               PIN_ENV: site.pin}
        enrolled = cli.invoke(station_group, [
            "enroll", str(enrolment.bundle_path), "--data-dir", str(station_dir),
            "--pkcs11-module", str(hsm.module), "--token-label", "station-token"], env=env)
        assert enrolled.exit_code == 0, enrolled.output
        assert not (station_dir / "station.sealed").exists()
        for path in station_dir.iterdir():  # the TLS key is nowhere in clear on disk
            if path.is_file():
                assert b"PRIVATE KEY" not in path.read_bytes(), path

        order_id = site.add_order(1)
        with virtual_boards(1) as boards:
            run = cli.invoke(station_group, [
                "run", "--data-dir", str(station_dir), "--order", order_id, "--count", "1",
                "--operator", site.operator_id, "--port", boards[0].location], env=env)
            assert run.exit_code == 0, run.output
            assert "summary: 1 passed, 0 failed of 1" in run.output
        assert len(site_devices(site, order_id)) == 1

        wrong = cli.invoke(station_group, ["status", "--data-dir", str(station_dir)],
                           env={**env, TOKEN_PIN_ENV: "11111111"})
        assert wrong.exit_code == 1
        assert "refused the PIN" in wrong.output
        with pytest.raises(WrongTokenPin):
            open_station(station_dir, "11111111")

    stolen = tmp_path / "stolen"
    shutil.copytree(station_dir, stolen)
    thief = make_softhsm(tmp_path / "thief-hsm", monkeypatch)
    with pytest.raises(TokenNotFound):
        open_station(stolen, USER_PIN)
    thief.init_token("station-token")
    # Same labels, other token: the sealing key is not there, so nothing opens.
    with pytest.raises(Exception, match="has no AES-256 secret key labelled"):
        open_station(stolen, USER_PIN)
