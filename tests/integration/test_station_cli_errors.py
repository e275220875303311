"""Every error of `provisioner station …` is one line in words; `provisioner --debug` shows the
traceback instead."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from station_fixtures import STATION_PASSPHRASE, served_site

from provisioner.cli import main
from provisioner.demo import DemoSite
from provisioner.station import unlock
from provisioner.station.commands import PIN_ENV, STATION_PASSPHRASE_ENV
from provisioner.station.config import StationPaths


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    with served_site(tmp_path_factory.mktemp("station-errors")) as site:
        yield site


@pytest.fixture(scope="module")
def enrolled(site: DemoSite, tmp_path_factory: pytest.TempPathFactory) -> Path:
    station_dir = tmp_path_factory.mktemp("enrolled") / "station"
    site.enrol_station(station_dir, "station-errors", STATION_PASSPHRASE)
    return station_dir


def _copy(enrolled: Path, tmp_path: Path) -> Path:
    station_dir = tmp_path / "station"
    shutil.copytree(enrolled, station_dir)
    return station_dir


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Case = Callable[[DemoSite, Path, Path, pytest.MonkeyPatch], tuple[list[str], str]]


def _run_args(station_dir: Path, site: DemoSite, order: str = "o-nosuch") -> list[str]:
    return ["run", "--data-dir", str(station_dir), "--order", order, "--count", "1",
            "--port", "/dev/null", "--operator", site.operator_id]


def not_enrolled(site: DemoSite, enrolled: Path, tmp: Path, mp: pytest.MonkeyPatch
                 ) -> tuple[list[str], str]:
    return ["status", "--data-dir", str(tmp / "empty")], "not enrolled"


def wrong_passphrase(site: DemoSite, enrolled: Path, tmp: Path, mp: pytest.MonkeyPatch
                     ) -> tuple[list[str], str]:
    mp.setenv(STATION_PASSPHRASE_ENV, "not the passphrase")
    return _run_args(_copy(enrolled, tmp), site), "wrong passphrase"


def passphrase_file_not_text(site: DemoSite, enrolled: Path, tmp: Path,
                             mp: pytest.MonkeyPatch) -> tuple[list[str], str]:
    junk = tmp / "passphrase"
    junk.write_bytes(b"\xff\xfe\x00junk")
    return ["status", "--data-dir", str(enrolled), "--passphrase-file", str(junk)], \
        "not UTF-8 text"


def wrong_pin(site: DemoSite, enrolled: Path, tmp: Path, mp: pytest.MonkeyPatch
              ) -> tuple[list[str], str]:
    mp.setenv(PIN_ENV, "0000" if site.pin != "0000" else "1111")
    return _run_args(_copy(enrolled, tmp), site), "authentication"


def order_not_open(site: DemoSite, enrolled: Path, tmp: Path, mp: pytest.MonkeyPatch
                   ) -> tuple[list[str], str]:
    return _run_args(_copy(enrolled, tmp), site), "order o-nosuch is not open"


def site_unreachable(site: DemoSite, enrolled: Path, tmp: Path, mp: pytest.MonkeyPatch
                     ) -> tuple[list[str], str]:
    station_dir = _copy(enrolled, tmp)
    config = station_dir / "station.json"
    raw = json.loads(config.read_text())
    raw["site_url"] = f"https://127.0.0.1:{_free_port()}"
    config.write_text(json.dumps(raw))
    return _run_args(station_dir, site), "unreachable"


def journal_not_a_database(site: DemoSite, enrolled: Path, tmp: Path, mp: pytest.MonkeyPatch
                           ) -> tuple[list[str], str]:
    station_dir = _copy(enrolled, tmp)
    StationPaths(station_dir).journal.write_bytes(b"this is not sqlite " * 100)
    return _run_args(station_dir, site), "cannot open journal"


def unexpected_exception(site: DemoSite, enrolled: Path, tmp: Path, mp: pytest.MonkeyPatch
                         ) -> tuple[list[str], str]:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the station broke")

    mp.setattr(unlock, "open_station", broken)
    return ["status", "--data-dir", str(enrolled)], \
        "unexpected RuntimeError: the station broke (run with --debug for the traceback)"


def recover_unreachable(site: DemoSite, enrolled: Path, tmp: Path, mp: pytest.MonkeyPatch
                        ) -> tuple[list[str], str]:
    args, said = site_unreachable(site, enrolled, tmp, mp)
    station_dir = args[2]
    return ["recover", "--data-dir", station_dir, "--operator", site.operator_id], said


def enrol_twice(site: DemoSite, enrolled: Path, tmp: Path, mp: pytest.MonkeyPatch
                ) -> tuple[list[str], str]:
    bundle = tmp / "bundle"
    bundle.write_bytes(b"irrelevant: the directory is checked first")
    mp.setenv("PROVISIONER_ENROL_PASSPHRASE", "0000-0000-0000-0000-0000-0000")
    return ["enroll", str(bundle), "--data-dir", str(_copy(enrolled, tmp))], "already enrolled"


CASES: list[Case] = [not_enrolled, wrong_passphrase, passphrase_file_not_text, wrong_pin,
                     order_not_open, site_unreachable, journal_not_a_database,
                     unexpected_exception, recover_unreachable, enrol_twice]


@pytest.mark.parametrize("case", CASES, ids=[case.__name__ for case in CASES])
def test_each_error_is_one_line_without_a_traceback(
        case: Case, site: DemoSite, enrolled: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STATION_PASSPHRASE_ENV, STATION_PASSPHRASE)
    monkeypatch.setenv(PIN_ENV, site.pin)
    args, said = case(site, enrolled, tmp_path, monkeypatch)
    result = CliRunner().invoke(main, ["station", *args])
    lines = result.output.splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), lines
    assert said.lower() in lines[0].lower(), lines
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, AssertionError)


def test_debug_shows_the_traceback_instead(enrolled: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the station broke")

    monkeypatch.setenv(STATION_PASSPHRASE_ENV, STATION_PASSPHRASE)
    monkeypatch.setattr(unlock, "open_station", broken)
    result = CliRunner().invoke(main, ["--debug", "station", "status", "--data-dir",
                                       str(enrolled)])
    assert isinstance(result.exception, RuntimeError)  # not turned into a one-liner
    assert result.exit_code == 1
