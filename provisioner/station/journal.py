"""The station journal: every attempt transition appended and committed before its effect."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from provisioner.errors import JournalError
from provisioner.station.engine import Attempt, AttemptState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    attempt_id TEXT NOT NULL,
    time TEXT NOT NULL,
    location TEXT NOT NULL,
    order_id TEXT NOT NULL,
    profile TEXT NOT NULL,
    state TEXT NOT NULL,
    closed INTEGER NOT NULL,
    chip_uid TEXT,
    request_id TEXT,
    drbg_index INTEGER,
    grant_id TEXT,
    device_id INTEGER,
    image_sha256 TEXT,
    code TEXT,
    detail TEXT NOT NULL,
    timings_ms TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_attempt ON transitions (attempt_id, seq);
CREATE INDEX IF NOT EXISTS transitions_chip ON transitions (chip_uid, state);
"""

# States after which the chip carries our image (a successful verify was seen).
_PROGRAMMED = (AttemptState.verified.value, AttemptState.locked.value, AttemptState.reported.value)


class Journal:
    """Append-only SQLite log of attempt snapshots (WAL, ``synchronous=FULL``); thread-safe.

    Rows hold ids, indices, digests, timings and error codes only — never key, template or
    image bytes (the ``Attempt`` type has no field that could carry them).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open journal: {exc}") from exc
        path.chmod(0o600)
        self._lock = threading.Lock()

    @contextmanager
    def _guard(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise JournalError(f"{self.path}: {what}: {exc}") from exc

    def append(self, attempt: Attempt, timings_ms: dict[str, float] | None = None) -> None:
        """Append ``attempt`` as its latest snapshot and commit durably before returning."""
        row = (
            attempt.attempt_id,
            datetime.now(UTC).isoformat(),
            attempt.location,
            attempt.order_id,
            attempt.profile,
            attempt.state.value,
            int(attempt.closed),
            attempt.chip_uid,
            attempt.request_id,
            attempt.drbg_index,
            attempt.grant_id,
            attempt.device_id,
            attempt.image_sha256,
            attempt.code,
            attempt.detail,
            json.dumps(timings_ms or {}, sort_keys=True),
        )
        with self._guard("append") as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT INTO transitions (attempt_id, time, location, order_id, profile, state,"
                    " closed, chip_uid, request_id, drbg_index, grant_id, device_id, image_sha256,"
                    " code, detail, timings_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    row,
                )
            except sqlite3.Error:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def latest(self) -> list[Attempt]:
        """Return the latest snapshot of every attempt, oldest attempt first."""
        with self._guard("read") as db:
            rows = db.execute(
                "SELECT attempt_id, location, order_id, profile, state, closed, chip_uid,"
                " request_id, drbg_index, grant_id, device_id, image_sha256, code, detail"
                " FROM transitions"
                " WHERE seq IN (SELECT MAX(seq) FROM transitions GROUP BY attempt_id) ORDER BY seq"
            ).fetchall()
        return [_attempt(row) for row in rows]

    def open_attempts(self) -> list[Attempt]:
        """Return attempts that are not closed: live ones and unreported terminal ones."""
        return [attempt for attempt in self.latest() if not attempt.closed]

    def is_chip_programmed(self, chip_uid: str) -> bool:
        """Whether any attempt ever verified an image on ``chip_uid`` at this station."""
        with self._guard("read") as db:
            found = db.execute(
                "SELECT 1 FROM transitions WHERE chip_uid = ? AND state IN (?,?,?) LIMIT 1",
                (chip_uid, *_PROGRAMMED),
            ).fetchone()
        return found is not None

    def failed_device_ids(self, chip_uid: str) -> set[int]:
        """Return device IDs granted to ``chip_uid`` here whose attempts never verified."""
        failed = {
            attempt.device_id
            for attempt in self.latest()
            if attempt.chip_uid == chip_uid
            and attempt.device_id is not None
            and attempt.state in (AttemptState.failed, AttemptState.refused, AttemptState.unknown)
        }
        return {device_id for device_id in failed if device_id is not None}

    def highest_index(self) -> int | None:
        """Return the highest DRBG index the site may hold: granted, or asked with no answer.

        Attempts the site refused (closed without a grant) did not consume their index.
        """
        indices = [
            attempt.drbg_index
            for attempt in self.latest()
            if attempt.drbg_index is not None and (attempt.grant_id or not attempt.closed)
        ]
        return max(indices, default=None)

    def history(self, attempt_id: str) -> list[AttemptState]:
        """Return the states ``attempt_id`` went through, in order."""
        with self._guard("read") as db:
            rows = db.execute(
                "SELECT state FROM transitions WHERE attempt_id = ? ORDER BY seq", (attempt_id,)
            ).fetchall()
        return [AttemptState(state) for (state,) in rows]

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()


def _attempt(row: tuple[object, ...]) -> Attempt:
    (attempt_id, location, order_id, profile, state, closed, chip_uid, request_id, drbg_index,
     grant_id, device_id, image_sha256, code, detail) = row
    return Attempt(
        attempt_id=str(attempt_id),
        location=str(location),
        order_id=str(order_id),
        profile=str(profile),
        state=AttemptState(str(state)),
        closed=bool(closed),
        chip_uid=None if chip_uid is None else str(chip_uid),
        request_id=None if request_id is None else str(request_id),
        drbg_index=None if drbg_index is None else int(str(drbg_index)),
        grant_id=None if grant_id is None else str(grant_id),
        device_id=None if device_id is None else int(str(device_id)),
        image_sha256=None if image_sha256 is None else str(image_sha256),
        code=None if code is None else str(code),
        detail=str(detail),
    )
