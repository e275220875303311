"""The station journal: every attempt transition appended and committed before its effect.

Rows are authenticated: each carries HMAC-SHA256 under a journal key derived (HKDF) from the
sealed station secrets, over its ``seq``, the previous row's MAC and every field, so a row
that is forged, changed, reordered or deleted from the middle fails at open (the whole chain
is checked there) with ``JournalError(code="journal_forged")``; a row holding a value the
station never writes (an unknown state, an index past 2^63 - 1) fails the same way. The chain
head is also recorded in the key stream state file at every key derivation, so a journal
deleted or rolled back past that point is caught too (``check_anchor``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from provisioner.crypto.secret import Secret
from provisioner.errors import JournalError
from provisioner.station.engine import Attempt, AttemptState
from provisioner.wire import MAX_DRBG_INDEX

MAC_INFO = b"provisioner/station-journal-mac/v1"
MAC_SIZE_BYTES = 32
_MAC_LABEL = "provisioner/station-journal/v1"
_COLUMNS = ("attempt_id", "time", "location", "order_id", "profile", "state", "closed",
            "chip_uid", "request_id", "drbg_index", "grant_id", "device_id", "image_sha256",
            "code", "detail", "timings_ms")
_SELECT_CHAIN = (
    "SELECT seq, attempt_id, time, location, order_id, profile, state, closed, chip_uid,"
    " request_id, drbg_index, grant_id, device_id, image_sha256, code, detail, timings_ms, mac"
    " FROM transitions ORDER BY seq"
)
_INSERT = (
    "INSERT INTO transitions (seq, attempt_id, time, location, order_id, profile, state,"
    " closed, chip_uid, request_id, drbg_index, grant_id, device_id, image_sha256, code,"
    " detail, timings_ms, mac) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_STATES = frozenset(state.value for state in AttemptState)


@dataclass(frozen=True, slots=True)
class JournalHead:
    """The newest row of the chain: its ``seq`` and MAC (seq 0: an empty journal)."""

    seq: int
    mac: bytes


EMPTY_HEAD = JournalHead(0, bytes(MAC_SIZE_BYTES))

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
    timings_ms TEXT NOT NULL,
    mac BLOB NOT NULL
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

    Raises (at open): JournalError: the file cannot be opened, or a row fails its MAC or holds
    a value the station never writes (``code="journal_forged"``).
    """

    def __init__(self, path: Path, mac_key: Secret) -> None:
        self.path = path
        self._mac_key = Secret(mac_key.reveal())
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open journal: {exc}") from exc
        path.chmod(0o600)
        self._lock = threading.Lock()
        self._head = self._verify_chain()

    def _mac(self, seq: int, previous: bytes, row: tuple[object, ...]) -> crypto_hmac.HMAC:
        mac = crypto_hmac.HMAC(self._mac_key.reveal(), hashes.SHA256())
        mac.update(json.dumps([_MAC_LABEL, seq, previous.hex(), *row],
                              separators=(",", ":")).encode())
        return mac

    def _verify_chain(self) -> JournalHead:
        """Check every row's MAC and values in seq order; return the chain head."""
        head = EMPTY_HEAD
        with self._guard("verify") as db:
            try:
                rows = db.execute(_SELECT_CHAIN).fetchall()
            except sqlite3.OperationalError as exc:  # an older journal without MACs
                raise JournalError(f"{self.path}: not an authenticated journal: {exc}",
                                   code="journal_forged") from exc
        for seq, *fields, mac in rows:
            if not isinstance(mac, bytes) or seq != head.seq + 1:
                raise _forged(self.path, seq, "is out of sequence or has no MAC")
            try:
                self._mac(seq, head.mac, tuple(fields)).verify(mac)
            except (InvalidSignature, TypeError) as exc:
                raise _forged(self.path, seq, "fails its MAC (forged or changed)") from exc
            _check_values(self.path, seq, fields)
            head = JournalHead(seq, mac)
        return head

    def head(self) -> JournalHead:
        """Return the newest row's seq and MAC (recorded by the key store as an anchor)."""
        with self._lock:
            return self._head

    def check_anchor(self, anchor: JournalHead | None) -> None:
        """Check that the row ``anchor`` names (recorded at the last key derivation) is here.

        Raises:
            JournalError: the journal is empty though keys were derived (``journal_missing``),
                or lacks that row (``journal_rolled_back``).
        """
        if anchor is None or anchor.seq == 0:
            return
        with self._guard("read") as db:
            row = db.execute("SELECT mac FROM transitions WHERE seq = ?", (anchor.seq,)
                             ).fetchone()
        if row is None and self.head().seq == 0:
            raise JournalError(
                f"{self.path}: the journal is missing or empty, but the key stream recorded "
                f"{anchor.seq} journal rows", code="journal_missing")
        if row is None or row[0] != anchor.mac:
            raise JournalError(
                f"{self.path}: the journal was rolled back or replaced: row {anchor.seq} "
                f"recorded by the key stream is {'missing' if row is None else 'different'}",
                code="journal_rolled_back")

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
            seq = self._head.seq + 1
            mac = self._mac(seq, self._head.mac, row).finalize()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(_INSERT, (seq, *row, mac))
            except sqlite3.Error:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            self._head = JournalHead(seq, mac)

    def latest(self) -> list[Attempt]:
        """Return the latest snapshot of every attempt, oldest attempt first."""
        with self._guard("read") as db:
            rows = db.execute(
                "SELECT attempt_id, location, order_id, profile, state, closed, chip_uid,"
                " request_id, drbg_index, grant_id, device_id, image_sha256, code, detail"
                " FROM transitions"
                " WHERE seq IN (SELECT MAX(seq) FROM transitions GROUP BY attempt_id) ORDER BY seq"
            ).fetchall()
        try:
            return [_attempt(row) for row in rows]
        except ValueError as exc:  # changed behind our back since the chain was checked
            raise JournalError(f"{self.path}: {exc}", code="journal_forged") from exc

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
        try:
            return [AttemptState(state) for (state,) in rows]
        except ValueError as exc:
            raise JournalError(f"{self.path}: {exc}", code="journal_forged") from exc

    def close(self) -> None:
        """Close the database connection and wipe the journal key."""
        with self._lock:
            self._db.close()
            self._mac_key.wipe()


def _forged(path: Path, seq: object, reason: str) -> JournalError:
    return JournalError(f"{path}: journal row {seq} {reason}", code="journal_forged")


def _check_values(path: Path, seq: int, fields: list[object]) -> None:
    """Refuse a row holding a value the station never writes."""
    values = dict(zip(_COLUMNS, fields, strict=True))
    if values["state"] not in _STATES:
        raise _forged(path, seq, f"has the unknown state {ascii(values['state'])[:40]}")
    if values["closed"] not in (0, 1):
        raise _forged(path, seq, "has a closed flag that is neither 0 nor 1")
    for name in ("drbg_index", "device_id"):
        value = values[name]
        if value is not None and (type(value) is not int or not 0 <= value <= MAX_DRBG_INDEX):
            raise _forged(path, seq, f"has {name} {ascii(value)[:40]} out of range")


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
