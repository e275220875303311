"""Issue 11 §1 and §5 as attacks on the station journal, against the real TLS site.

A forged row (a huge index that once made the station fast-forward for ever, an unknown state
that once crashed the CLI with a traceback), a deleted journal and a rolled-back one: each is a
clear ``JournalError`` at start-up, and the site has an audited alarm naming the station.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from station_fixtures import STATION_PASSPHRASE, served_site

from provisioner.cli import main
from provisioner.demo import DemoSite, virtual_boards
from provisioner.errors import JournalError
from provisioner.site.db import repo
from provisioner.station.commands import STATION_PASSPHRASE_ENV
from provisioner.station.config import StationPaths
from provisioner.station.unlock import open_station


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    with served_site(tmp_path_factory.mktemp("journal-attacks")) as site:
        yield site


def _provisioned(site: DemoSite, station_dir: Path, boards: int = 1) -> None:
    """Unlock the station, program ``boards`` boards, close it."""
    runner = open_station(station_dir, STATION_PASSPHRASE)
    try:
        runner.sign_in(site.operator_id, site.pin)
        order_id = site.add_order(boards)
        with virtual_boards(boards) as attached:
            for board in attached:
                result = runner.provision_board(order_id, board.location, board.connect,
                                                lambda _event: None)
                assert result.passed, result
    finally:
        runner.close()


@pytest.fixture
def enrolled(site: DemoSite, tmp_path: Path) -> tuple[str, Path]:
    station_id = f"st-{secrets.token_hex(4)}"
    station_dir = tmp_path / "station"
    site.enrol_station(station_dir, station_id, STATION_PASSPHRASE)
    _provisioned(site, station_dir)
    return station_id, station_dir


def _journal_db(station_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(StationPaths(station_dir).journal, isolation_level=None)


def _last_alarm(site: DemoSite) -> tuple[str, str, dict[str, object]]:
    with site.server.context.factory() as session:
        entry = repo.audit_entries(session)[-1]
    return entry.event, entry.actor, dict(entry.data)


def _refused_start(site: DemoSite, station_id: str, station_dir: Path, code: str) -> str:
    with pytest.raises(JournalError) as caught:
        open_station(station_dir, STATION_PASSPHRASE)
    assert caught.value.code == code
    event, actor, data = _last_alarm(site)
    assert (event, actor, data["station_id"], data["code"]) == (
        "alarm_station_journal", f"station:{station_id}", station_id, code)
    assert "the site has recorded an alarm" in str(caught.value)
    return str(caught.value)


def test_a_forged_row_with_a_huge_index_is_refused_not_fast_forwarded(
    site: DemoSite, enrolled: tuple[str, Path],
) -> None:
    station_id, station_dir = enrolled
    with _journal_db(station_dir) as db:
        db.row_factory = sqlite3.Row
        row = dict(db.execute("SELECT * FROM transitions ORDER BY seq DESC LIMIT 1").fetchone())
        # an open attempt whose index the station would have to skip past at start-up
        forged = {**row, "seq": row["seq"] + 1, "attempt_id": "forged-attempt", "closed": 0,
                  "drbg_index": 2**62}
        db.execute(f"INSERT INTO transitions ({', '.join(forged)}) "
                   f"VALUES ({', '.join('?' * len(forged))})", tuple(forged.values()))
    message = _refused_start(site, station_id, station_dir, "journal_forged")
    assert f"journal row {row['seq'] + 1} fails its MAC" in message


def test_a_row_with_an_unknown_state_is_a_journal_error_not_a_traceback(
    site: DemoSite, enrolled: tuple[str, Path],
) -> None:
    station_id, station_dir = enrolled
    with _journal_db(station_dir) as db:
        db.execute("UPDATE transitions SET state = 'teleported' WHERE seq = 2")
    _refused_start(site, station_id, station_dir, "journal_forged")
    result = CliRunner().invoke(main, ["station", "status", "--data-dir", str(station_dir)],
                                env={STATION_PASSPHRASE_ENV: STATION_PASSPHRASE})
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert "journal row 2 fails its MAC" in lines[0]


def test_a_deleted_row_breaks_the_chain(site: DemoSite, enrolled: tuple[str, Path]) -> None:
    station_id, station_dir = enrolled
    with _journal_db(station_dir) as db:
        db.execute("DELETE FROM transitions WHERE seq = 3")
    message = _refused_start(site, station_id, station_dir, "journal_forged")
    assert "journal row 4 is out of sequence" in message


def test_a_deleted_journal_is_noticed_and_alarmed(
    site: DemoSite, enrolled: tuple[str, Path],
) -> None:
    station_id, station_dir = enrolled
    journal = StationPaths(station_dir).journal
    for path in journal.parent.glob(journal.name + "*"):
        path.unlink()
    message = _refused_start(site, station_id, station_dir, "journal_missing")
    assert "the journal is missing or empty" in message
    assert "restore the journal or re-enrol the station" in message


def test_a_rolled_back_journal_is_noticed_and_alarmed(
    site: DemoSite, enrolled: tuple[str, Path], tmp_path: Path,
) -> None:
    station_id, station_dir = enrolled
    journal = StationPaths(station_dir).journal
    saved = tmp_path / "saved"
    saved.mkdir()
    for path in journal.parent.glob(journal.name + "*"):
        shutil.copy2(path, saved / path.name)
    _provisioned(site, station_dir)  # one more board: the key stream records a newer head
    for path in journal.parent.glob(journal.name + "*"):
        path.unlink()
    for path in saved.iterdir():
        shutil.copy2(path, journal.parent / path.name)
    message = _refused_start(site, station_id, station_dir, "journal_rolled_back")
    assert "rolled back or replaced" in message


def test_an_intact_journal_opens(site: DemoSite, enrolled: tuple[str, Path]) -> None:
    _station_id, station_dir = enrolled
    runner = open_station(station_dir, STATION_PASSPHRASE)
    try:
        assert runner.journal.head().seq > 0
        assert runner.journal.open_attempts() == []
    finally:
        runner.close()
