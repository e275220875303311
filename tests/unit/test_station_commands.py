"""Station CLI plumbing: where secrets come from, core dumps off, the headless summary line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from provisioner.station.commands import read_secret, station_group
from provisioner.station.engine import AttemptState
from provisioner.station.events import BoardFinished
from provisioner.station.headless import HeadlessSummary, format_result


def test_secret_from_file_then_env_then_prompt(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pass"
    path.write_text("from-file\n")
    monkeypatch.setenv("X_SECRET", "from-env")
    assert read_secret("X_SECRET", path, "p") == "from-file"
    assert read_secret("X_SECRET", None, "p") == "from-env"
    monkeypatch.delenv("X_SECRET")

    @click.command()
    def ask() -> None:
        click.echo(read_secret("X_SECRET", None, "Passphrase"))

    result = CliRunner().invoke(ask, input="typed\n")
    assert result.output.endswith("typed\n")
    assert "typed" not in result.output.splitlines()[0]  # the prompt line does not echo it


def test_core_dumps_are_disabled() -> None:
    code = ("import resource; from provisioner.station.commands import disable_core_dumps; "
            "disable_core_dumps(); print(resource.getrlimit(resource.RLIMIT_CORE))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "(0, 0)"


def test_status_of_an_unenrolled_directory_names_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(station_group, ["status", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "not enrolled" in result.output


def test_result_lines_and_summary() -> None:
    ok = BoardFinished("/dev/pts/4", "a", AttemptState.reported, True, None, "programmed",
                       "00ff", 7)
    bad = BoardFinished("VSWD0001", "b", AttemptState.refused, False, "quota_exhausted",
                        "quota_exhausted: none left", "00aa", None)
    assert format_result(ok) == "PASS /dev/pts/4 chip=00ff device=7 state=reported"
    assert format_result(bad).startswith("FAIL VSWD0001 chip=00aa device=- state=refused "
                                         "code=quota_exhausted")
    summary = HeadlessSummary((ok, bad), ())
    assert (summary.passed, summary.failed) == (1, 1)
    assert summary.line() == "summary: 1 passed, 1 failed of 2 (recovered 0 open attempt(s))"
