"""The station journal (SQLite WAL) and the recovery table."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from provisioner.errors import JournalError
from provisioner.station.engine import Attempt, AttemptState
from provisioner.station.journal import Journal
from provisioner.station.recovery import RecoveryAction, plan_recovery


def _attempt(state: AttemptState, **facts: object) -> Attempt:
    return replace(Attempt("a1", "/dev/pts/3", "order-1", "stm32f103c8"), state=state, **facts)


def test_journal_is_wal_with_full_sync_and_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    journal.append(_attempt(AttemptState.detected))
    journal.close()
    db = sqlite3.connect(tmp_path / "j.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert (tmp_path / "j.sqlite3").stat().st_mode & 0o777 == 0o600


def test_latest_snapshot_and_history_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    journal.append(_attempt(AttemptState.detected))
    journal.append(_attempt(AttemptState.uid_read, chip_uid="aa" * 12, request_id="r" * 10,
                            drbg_index=4))
    journal.append(_attempt(AttemptState.granted, chip_uid="aa" * 12, request_id="r" * 10,
                            drbg_index=4, grant_id="g", device_id=77))
    other = replace(_attempt(AttemptState.refused, code="quota_exhausted"), attempt_id="a2",
                    closed=True)
    journal.append(other)
    journal.close()
    reopened = Journal(path)
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
    journal = Journal(tmp_path / "j.sqlite3")
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
        Journal(tmp_path / "missing-dir" / "j.sqlite3")


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
