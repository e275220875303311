"""The station journal (SQLite WAL) and the recovery table."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from provisioner.crypto.secret import Secret
from provisioner.errors import JournalError
from provisioner.station.engine import Attempt, AttemptState
from provisioner.station.journal import EMPTY_HEAD, Journal, JournalHead
from provisioner.station.recovery import RecoveryAction, plan_recovery

KEY = Secret(bytes(range(32)))


def _attempt(state: AttemptState, **facts: object) -> Attempt:
    return replace(Attempt("a1", "/dev/pts/3", "order-1", "stm32f103c8"), state=state, **facts)


def test_journal_is_wal_with_full_sync_and_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3", KEY)
    journal.append(_attempt(AttemptState.detected))
    journal.close()
    db = sqlite3.connect(tmp_path / "j.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert (tmp_path / "j.sqlite3").stat().st_mode & 0o777 == 0o600


def test_latest_snapshot_and_history_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path, KEY)
    journal.append(_attempt(AttemptState.detected))
    journal.append(_attempt(AttemptState.uid_read, chip_uid="aa" * 12, request_id="r" * 10,
                            drbg_index=4))
    journal.append(_attempt(AttemptState.granted, chip_uid="aa" * 12, request_id="r" * 10,
                            drbg_index=4, grant_id="g", device_id=77))
    other = replace(_attempt(AttemptState.refused, code="quota_exhausted"), attempt_id="a2",
                    closed=True)
    journal.append(other)
    journal.close()
    reopened = Journal(path, KEY)
    latest = reopened.latest()
    assert [a.attempt_id for a in latest] == ["a1", "a2"]
    assert latest[0].state is AttemptState.granted
    assert latest[0].device_id == 77
    assert latest[1].code == "quota_exhausted"
    assert [a.attempt_id for a in reopened.open_attempts()] == ["a1"]
    assert reopened.history("a1") == [AttemptState.detected, AttemptState.uid_read,
                                      AttemptState.granted]
    assert reopened.highest_index() == 4
    reopened.append(replace(_attempt(AttemptState.refused, drbg_index=9, code="quota_exhausted"),
                            attempt_id="a3", closed=True))
    assert reopened.highest_index() == 4  # a refused request did not consume its index


def test_programmed_chips_and_failed_device_ids(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3", KEY)
    assert journal.highest_index() is None
    journal.append(_attempt(AttemptState.verified, chip_uid="01" * 12, device_id=5, grant_id="g"))
    journal.append(replace(_attempt(AttemptState.failed, chip_uid="02" * 12, device_id=6,
                                    grant_id="h"), attempt_id="a2"))
    assert journal.is_chip_programmed("01" * 12)
    assert not journal.is_chip_programmed("02" * 12)
    assert journal.failed_device_ids("02" * 12) == {6}
    assert journal.failed_device_ids("01" * 12) == set()


def test_unopenable_journal_raises_journal_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot open journal"):
        Journal(tmp_path / "missing-dir" / "j.sqlite3", KEY)


def _three_rows(path: Path) -> JournalHead:
    journal = Journal(path, KEY)
    for state in (AttemptState.detected, AttemptState.uid_read, AttemptState.granted):
        journal.append(_attempt(state, drbg_index=4, grant_id="g", device_id=7))
    head = journal.head()
    journal.close()
    return head


@pytest.mark.parametrize("tamper", [
    "UPDATE transitions SET drbg_index = 5 WHERE seq = 2",
    "UPDATE transitions SET state = 'teleported' WHERE seq = 2",
    "UPDATE transitions SET mac = x'00' WHERE seq = 1",
    "UPDATE transitions SET seq = 9 WHERE seq = 3",
    "DELETE FROM transitions WHERE seq = 2",
], ids=["index", "state", "mac", "reordered", "deleted"])
def test_a_changed_journal_fails_at_open(tmp_path: Path, tamper: str) -> None:
    path = tmp_path / "j.sqlite3"
    _three_rows(path)
    with sqlite3.connect(path) as db:
        db.execute(tamper)
    with pytest.raises(JournalError) as caught:
        Journal(path, KEY)
    assert caught.value.code == "journal_forged"
    assert "journal row" in str(caught.value)


def test_another_stations_key_does_not_open_the_journal(tmp_path: Path) -> None:
    _three_rows(tmp_path / "j.sqlite3")
    with pytest.raises(JournalError, match="row 1 fails its MAC"):
        Journal(tmp_path / "j.sqlite3", Secret(bytes(32)))


def test_values_the_station_never_writes_are_refused_even_with_a_valid_mac(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j.sqlite3", KEY)
    bogus = SimpleNamespace(value="teleported")  # a state our engine does not have
    journal.append(replace(_attempt(AttemptState.detected), state=bogus))  # type: ignore[arg-type]
    journal.close()
    with pytest.raises(JournalError, match="unknown state 'teleported'"):
        Journal(tmp_path / "j.sqlite3", KEY)


def test_anchor_names_missing_and_rolled_back_journals(tmp_path: Path) -> None:
    head = _three_rows(tmp_path / "a.sqlite3")
    journal = Journal(tmp_path / "a.sqlite3", KEY)
    journal.check_anchor(head)
    journal.check_anchor(EMPTY_HEAD)
    journal.check_anchor(None)
    with pytest.raises(JournalError) as rolled:
        journal.check_anchor(JournalHead(head.seq + 1, head.mac))
    assert rolled.value.code == "journal_rolled_back"
    with pytest.raises(JournalError) as replaced:
        journal.check_anchor(JournalHead(head.seq, bytes(32)))
    assert replaced.value.code == "journal_rolled_back"
    journal.close()
    empty = Journal(tmp_path / "new.sqlite3", KEY)
    with pytest.raises(JournalError) as missing:
        empty.check_anchor(head)
    assert missing.value.code == "journal_missing"


@pytest.mark.parametrize(
    ("state", "facts", "action"),
    [
        (AttemptState.detected, {}, RecoveryAction.close_locally),
        (AttemptState.uid_read, {}, RecoveryAction.settle_grant),
        (AttemptState.granted, {"grant_id": "g"}, RecoveryAction.report_failed),
        (AttemptState.key_derived, {"grant_id": "g"}, RecoveryAction.report_failed),
        (AttemptState.flashing, {"grant_id": "g"}, RecoveryAction.reverify),
        (AttemptState.verified, {"grant_id": "g"}, RecoveryAction.finish),
        (AttemptState.locked, {"grant_id": "g"}, RecoveryAction.finish),
        (AttemptState.reported, {"grant_id": "g"}, RecoveryAction.resend_report),
        (AttemptState.failed, {"grant_id": "g"}, RecoveryAction.resend_report),
        (AttemptState.unknown, {"grant_id": "g"}, RecoveryAction.resend_report),
        (AttemptState.failed, {}, RecoveryAction.close_locally),
        (AttemptState.refused, {}, RecoveryAction.close_locally),
        (AttemptState.reported, {"grant_id": "g", "closed": True}, None),
    ],
)
def test_recovery_table(state: AttemptState, facts: dict[str, object],
                        action: RecoveryAction | None) -> None:
    assert plan_recovery(_attempt(state, **facts)) is action
