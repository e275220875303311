"""`provisioner site …` through click's CliRunner, on a temporary site directory."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from click.testing import CliRunner
from site_fixtures import REPO

from provisioner.crypto.bundle import open_bundle
from provisioner.site.admin_cli import site_group


def _run(runner: CliRunner, site: Path, *args: str, stdin: str | None = None) -> str:
    result = runner.invoke(site_group, ["--site-dir", str(site), *args], input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_admin_commands_end_to_end(tmp_path: Path) -> None:
    runner = CliRunner()
    site = tmp_path / "site-data"
    out = _run(runner, site, "init", "--name", "plant-1", "--host", "site.example")
    assert re.search(r"site CA\s+sha256 [0-9a-f]{64}", out)
    for secret_file in ("master.key", "signing_key.pem", "ca_key.pem", "server_key.pem"):
        assert stat.S_IMODE((site / secret_file).stat().st_mode) == 0o600
    assert runner.invoke(site_group, ["--site-dir", str(site), "init"]).exit_code == 1

    out = _run(runner, site, "station", "add", "ST-1", "--url", "https://site.example:8443")
    passphrase = re.search(r"passphrase.*: (\S+)", out)
    assert passphrase is not None
    bundle = open_bundle((site / "bundles" / "ST-1.bundle").read_bytes(), passphrase.group(1))
    assert bundle.site_url == "https://site.example:8443"
    assert passphrase.group(1) not in (site / "site.db").read_bytes().decode("latin-1")
    _run(runner, site, "station", "add", "ST-2")
    _run(runner, site, "station", "suspend", "ST-2")
    listing = _run(runner, site, "station", "list")
    rows = {line.split()[0]: line.split() for line in listing.splitlines()[2:]}
    # Pending until the station confirms its one-time enrolment (test_station_enrolment.py).
    assert rows["ST-1"][:4] == ["ST-1", "pending", "0", "never"]
    skipped = runner.invoke(site_group, ["--site-dir", str(site), "station", "activate", "ST-1"])
    assert skipped.exit_code == 1
    assert "has not confirmed its one-time enrolment" in skipped.output
    assert rows["ST-2"][:2] == ["ST-2", "suspended"]

    _run(runner, site, "operator", "add", "alice", stdin="4711-2342\n4711-2342\n")
    assert "alice\tfailures=0\tok" in _run(runner, site, "operator", "list")
    _run(runner, site, "operator", "reset", "alice", stdin="1111-2222\n1111-2222\n")

    fixtures = REPO / "fixtures" / "stm32f103c8"
    out = _run(runner, site, "firmware", "add", str(fixtures / "bootloader.hex"),
               "--kind", "bootloader-template", "--product", "widget", "--version", "1.0",
               "--profile", "stm32f103c8")
    assert re.search(r"sha256 [0-9a-f]{64}", out)
    _run(runner, site, "firmware", "add", str(fixtures / "application.hex"),
         "--kind", "application", "--product", "widget", "--version", "1.0")
    # An application image is no template: its zones are not blank, so it is refused as one.
    bad = runner.invoke(site_group, ["--site-dir", str(site), "firmware", "add",
                                     str(fixtures / "application.hex"), "--kind",
                                     "bootloader-template", "--product", "widget",
                                     "--version", "9", "--profile", "stm32f103c8"])
    assert bad.exit_code != 0

    order_id = _run(runner, site, "order", "create", "--product", "widget", "--profile",
                    "stm32f103c8", "--quantity", "100", "--bootloader", "1.0",
                    "--application", "1.0", "--stations", "ST-1").strip()
    orders = _run(runner, site, "order", "list").splitlines()
    assert orders[0].split()[:8] == ["order_id", "status", "product", "profile", "authorised",
                                     "produced", "reserved", "remaining"]
    row = next(line.split() for line in orders[2:] if line.startswith(order_id))
    assert row[:8] == [order_id, "open", "widget", "stm32f103c8", "100", "0", "0", "100"]
    assert row[-1] == "ST-1"
    assert row[8] == "1.0"
    assert re.search(r"remaining:\s+100", _run(runner, site, "order", "show", order_id))
    # A station enrolled after the order serves it once added (audited).
    _run(runner, site, "station", "add", "ST-3")
    added = _run(runner, site, "order", "add-station", order_id, "ST-3")
    assert added.strip() == f"station ST-3 may now serve order {order_id}"
    shown = _run(runner, site, "order", "show", order_id)
    assert re.search(r"stations:\s+ST-1, ST-3", shown)
    _run(runner, site, "order", "close", order_id)
    assert re.search(r"status:\s+closed", _run(runner, site, "order", "show", order_id))
    firmware = _run(runner, site, "firmware", "list").splitlines()
    assert [line.split()[1] for line in firmware[2:]] == ["application", "bootloader-template"]

    assert re.search(r"audit chain OK: \d+ entries", _run(runner, site, "audit", "verify"))
    _run(runner, site, "audit", "export", str(tmp_path / "audit.tar"))
    assert (tmp_path / "audit.tar").stat().st_size > 0
