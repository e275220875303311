"""Hash-chained, Ed25519-signed audit entries: canonical JSON, building and verifying (pure)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, TypeAlias

from provisioner.errors import AuditDataRefused, AuditError, BadSignature, ChainBroken

if TYPE_CHECKING:
    from provisioner.crypto.signing import Signer, VerifyKey

JSON: TypeAlias = "bool | int | str | list[JSON] | dict[str, JSON] | None"

GENESIS_HASH = "0" * 64

_HEX64 = re.compile(r"[0-9a-f]{64}")
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*")
_SECRET_WORDS = ("pin", "passphrase", "secret", "password", "private")
_SECRET_SUFFIXES = ("_key", "_seed")


class AuditEvent(StrEnum):
    """Event names the site writes and the report reads (one vocabulary, STYLE §3).

    Adding an event: a member here, written through ``site/audit_facts.record``. A name
    starting ``alarm_`` is listed by every report as an alarm, one ending ``_refused`` is
    counted under its ``code``; the report reads the standard fields of ``FACT_FIELDS``.
    """

    site_initialised = "site_initialised"
    station_enrolled = "station_enrolled"
    station_suspended = "station_suspended"
    station_revoked = "station_revoked"
    station_reactivated = "station_reactivated"
    station_enrolment_confirmed = "station_enrolment_confirmed"
    operator_added = "operator_added"
    operator_reset = "operator_reset"
    operator_signed_in = "operator_signed_in"
    operator_sign_in_failed = "operator_sign_in_failed"
    operator_locked = "operator_locked"
    firmware_added = "firmware_added"
    order_created = "order_created"
    order_closed = "order_closed"
    order_station_added = "order_station_added"
    grant_issued = "grant_issued"
    grant_refused = "grant_refused"
    device_programmed = "device_programmed"
    device_failed = "device_failed"
    device_suspect = "device_suspect"
    device_quarantined = "device_quarantined"
    reservation_released = "reservation_released"
    alarm_duplicate_chip = "alarm_duplicate_chip"
    alarm_index_reused = "alarm_index_reused"
    alarm_chip_quarantined = "alarm_chip_quarantined"
    alarm_digest_mismatch = "alarm_digest_mismatch"
    alarm_stale_reservation = "alarm_stale_reservation"
    alarm_report_disagreement = "alarm_report_disagreement"
    release_added = "release_added"
    device_entitled = "device_entitled"
    device_revoked = "device_revoked"
    update_delivered = "update_delivered"
    update_redelivered = "update_redelivered"
    update_refused = "update_refused"
    update_installed = "update_installed"
    update_rolled_back = "update_rolled_back"
    alarm_clone = "alarm_clone"
    alarm_release_invalid = "alarm_release_invalid"
    alarm_unregistered_device = "alarm_unregistered_device"
    alarm_enrolment_reused = "alarm_enrolment_reused"
    alarm_station_cloned = "alarm_station_cloned"
    alarm_firmware_profile_mismatch = "alarm_firmware_profile_mismatch"
    site_keys_migrated = "site_keys_migrated"
    site_key_files_shredded = "site_key_files_shredded"
    alarm_station_journal = "alarm_station_journal"
    alarm_bad_mac = "alarm_bad_mac"


# The fields an entry's data carries when they apply, under these names in every event.
FACT_FIELDS = (
    "order_id", "station_id", "operator_id", "device_id", "chip_uid", "drbg_index",
    "grant_id", "image_sha256", "verified", "protection_level", "timings_ms", "code", "detail",
)


def is_alarm(event: str) -> bool:
    """Whether ``event`` is an alarm (its name starts ``alarm_``)."""
    return event.startswith("alarm_")


def is_refusal(event: str) -> bool:
    """Whether ``event`` records a refused request (its name ends ``_refused``)."""
    return event.endswith("_refused")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One signed link of the chain; ``seq`` is the signature counter (1, 2, 3, ...)."""

    seq: int
    time: str
    actor: str
    event: str
    data: Mapping[str, JSON]
    prev_hash: str
    hash: str
    key_id: str
    signature: str

    def to_dict(self) -> dict[str, JSON]:
        """Return the entry as a plain JSON object (all nine fields)."""
        return {
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "event": self.event,
            "data": dict(self.data),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "key_id": self.key_id,
            "signature": self.signature,
        }


def _check_json(obj: object, path: str) -> None:
    """Refuse anything but null, bool, int, str, lists and str-keyed objects."""
    if obj is None or isinstance(obj, bool | int | str):
        return
    if isinstance(obj, float):
        # Floats have no single canonical text form across producers; refuse them.
        raise AuditDataRefused(path, "floats are not allowed (use integers, e.g. milliseconds)")
    if isinstance(obj, list | tuple):
        for index, item in enumerate(obj):
            _check_json(item, f"{path}[{index}]")
        return
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise AuditDataRefused(path, f"object key of type {type(key).__name__}")
            _check_json(value, f"{path}.{key}" if path else key)
        return
    raise AuditDataRefused(path, f"values of type {type(obj).__name__} are not JSON")


def canonical_json(obj: object) -> bytes:
    """Encode ``obj`` as canonical JSON: sorted keys, no whitespace, UTF-8, no floats.

    Integers are unbounded; strings keep non-ASCII characters as UTF-8.

    Raises:
        AuditDataRefused: a float (or NaN/inf), bytes or a non-JSON value anywhere inside.
    """
    _check_json(obj, "")
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _refuse_secrets(obj: object, path: str) -> None:
    if isinstance(obj, bytes | bytearray | memoryview):
        raise AuditDataRefused(path, "raw bytes (key, template or image material) never go in")
    if isinstance(obj, list | tuple):
        for index, item in enumerate(obj):
            _refuse_secrets(item, f"{path}[{index}]")
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            name = str(key).lower()
            child = f"{path}.{key}" if path else str(key)
            if name in ("key", "seed") or name.endswith(_SECRET_SUFFIXES):
                raise AuditDataRefused(child, "field name looks like a key or seed")
            if any(word in name for word in _SECRET_WORDS):
                raise AuditDataRefused(child, "field name looks like a PIN, passphrase or secret")
            _refuse_secrets(value, child)


class CheckedData(dict[str, "JSON"]):
    """Entry data that :func:`checked_data` passed, in plain JSON types."""


class _NotPlain(Exception):
    """Data the fast walk does not take: the full checks decide (and word the refusal)."""


def checked_data(data: Mapping[str, object]) -> CheckedData:
    """Check entry data once and return it in plain JSON types (tuples become lists).

    Data of plain dicts, lists, tuples, str, int, bool and None with harmless field names
    takes one walk; anything else goes through the full checks, which word the refusal.
    Build it before taking a lock: :func:`build_entry` then only links, hashes and signs.

    Raises:
        AuditDataRefused: a secret-looking field name, bytes, a float or a non-JSON value.
    """
    if isinstance(data, CheckedData):
        return data
    try:
        return CheckedData(_plain_dict(data))
    except _NotPlain:
        _refuse_secrets(data, "")
        plain: dict[str, JSON] = json.loads(canonical_json(data))
        return CheckedData(plain)


def _plain(value: object) -> JSON:
    kind = type(value)
    if value is None or kind is str or kind is int or kind is bool:
        return value  # type: ignore[return-value]  # exactly one of the JSON scalars
    if kind is dict:
        return _plain_dict(value)  # type: ignore[arg-type]
    if kind is list or kind is tuple:
        return [_plain(item) for item in value]  # type: ignore[attr-defined]
    raise _NotPlain


def _plain_dict(data: Mapping[str, object]) -> dict[str, JSON]:
    if type(data) is not dict:
        raise _NotPlain
    plain: dict[str, JSON] = {}
    for key, value in data.items():
        if type(key) is not str or _is_secret_name(key.lower()):
            raise _NotPlain
        plain[key] = _plain(value)
    return plain


@functools.lru_cache(maxsize=1024)
def _is_secret_name(name: str) -> bool:
    """The names :func:`_refuse_secrets` refuses (entries repeat theirs: cached)."""
    return (name in ("key", "seed") or name.endswith(_SECRET_SUFFIXES)
            or any(word in name for word in _SECRET_WORDS))


def format_time(time: datetime) -> str:
    """Render an aware datetime as RFC 3339 UTC with microseconds and a ``Z`` suffix."""
    if time.utcoffset() is None:
        raise AuditError("audit time must be timezone-aware (site clock, UTC)")
    utc = time.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def _hash_input(entry_fields: Mapping[str, JSON], prev_hash: str) -> bytes | None:
    if not isinstance(prev_hash, str) or not _HEX64.fullmatch(prev_hash):
        return None
    return bytes.fromhex(prev_hash) + canonical_json(entry_fields)


def compute_hash(
    *, seq: int, time: str, actor: str, event: str, data: Mapping[str, JSON],
    prev_hash: str, key_id: str,
) -> str:
    """Return hex SHA-256(prev_hash bytes ‖ canonical JSON of the seven signed fields)."""
    fields: dict[str, JSON] = {
        "seq": seq, "time": time, "actor": actor, "event": event,
        "data": dict(data), "prev_hash": prev_hash, "key_id": key_id,
    }
    message = _hash_input(fields, prev_hash)
    if message is None:
        raise AuditError(f"prev_hash {prev_hash!r} is not 64 lowercase hex digits")
    return hashlib.sha256(message).hexdigest()


def build_entry(
    *,
    prev: AuditEntry | None,
    time: datetime,
    actor: str,
    event: str,
    data: Mapping[str, object],
    signer: Signer,
) -> AuditEntry:
    """Build the entry following ``prev`` (or the first, seq 1), hashed and signed by ``signer``.

    ``data`` from :func:`checked_data` is not checked again.

    Raises:
        AuditDataRefused: ``data`` holds a secret-looking field name, bytes or a float.
        AuditError: naive ``time``, empty ``actor`` or a malformed ``event`` name.
    """
    if not actor:
        raise AuditError("audit actor must not be empty")
    if not _EVENT_NAME.fullmatch(event):
        raise AuditError(f"audit event {event!r} is not a snake_case name")
    # Plain JSON types (tuples become lists), so that the stored form hashes alike.
    plain = checked_data(data)
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS_HASH if prev is None else prev.hash
    if not _HEX64.fullmatch(prev_hash):
        raise AuditError(f"prev_hash {prev_hash!r} is not 64 lowercase hex digits")
    stamp = format_time(time)
    key_id = signer.key_id
    digest = _digest({"seq": seq, "time": stamp, "actor": actor, "event": str(event),
                      "data": plain, "prev_hash": prev_hash, "key_id": key_id}, prev_hash)
    signature = signer.sign(bytes.fromhex(digest)).hex()
    return AuditEntry(seq, stamp, actor, str(event), plain, prev_hash, digest, key_id, signature)


def _signed_fields(entry: AuditEntry, seq: int) -> dict[str, JSON]:
    return {
        "seq": seq, "time": entry.time, "actor": entry.actor, "event": entry.event,
        "data": dict(entry.data), "prev_hash": entry.prev_hash, "key_id": entry.key_id,
    }


def _hash_as(entry: AuditEntry, seq: int) -> str | None:
    """Recompute ``entry``'s hash as if it had ``seq``; None when it cannot be encoded."""
    if not isinstance(entry.prev_hash, str) or not _HEX64.fullmatch(entry.prev_hash):
        return None
    try:
        # Input parsed from JSON is JSON already: encode without the producer-side type walk.
        return _digest(_signed_fields(entry, seq), entry.prev_hash)
    except (TypeError, ValueError):
        return None


def _digest(fields: Mapping[str, JSON], prev_hash: str) -> str:
    """:func:`compute_hash` of fields known to be plain JSON (no type walk)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    return hashlib.sha256(bytes.fromhex(prev_hash) + text.encode("utf-8")).hexdigest()


def _is_intact(entry: AuditEntry) -> bool:
    return _hash_as(entry, entry.seq) == entry.hash


def is_signed(entry: AuditEntry, verify_key: VerifyKey) -> bool:
    """Whether ``entry``'s own signature verifies under ``verify_key``."""
    if entry.key_id != verify_key.key_id:
        return False
    try:
        signature = bytes.fromhex(entry.signature)
        verify_key.verify(bytes.fromhex(entry.hash), signature, what=f"audit entry {entry.seq}")
    except (BadSignature, ValueError, TypeError):
        return False
    return True


def _damage_of_changed(entry: AuditEntry, items: list[AuditEntry], expected_seq: int) -> str:
    """Tell an entry moved to another seq (its hash fits another seq) from an edited one.

    The seq it was signed under is found from its neighbours: the entry its prev_hash names,
    or the entry naming its hash as prev_hash.
    """
    candidates = set()
    for other in items:
        if other.hash == entry.prev_hash:
            candidates.add(other.seq + 1)
        if other.prev_hash == entry.hash:
            candidates.add(other.seq - 1)
    candidates.discard(expected_seq)
    moved = any(_hash_as(entry, seq) == entry.hash for seq in candidates)
    return "reordered" if moved else "changed"


def verify_chain(
    entries: Iterable[AuditEntry], verify_key: VerifyKey, *, signatures: bool = True,
    start: tuple[int, str] = (1, GENESIS_HASH),
) -> int:
    """Verify hashes, key ids, signatures, seq order and links; return the number of entries.

    Per entry, in this order: its own hash ("changed", or "reordered" when the entry is intact
    but stored under another seq), its key id and, when ``signatures``, its signature under
    ``verify_key`` ("bad_signature"), its seq against the previous one ("deleted" when a seq
    is missing, "reordered" when it appears later or went back), its prev_hash against the
    previous hash ("bad_link"). The seq named is the one expected at that position, except
    for a seq that went back, which is named itself. ``start`` is the first (seq, prev_hash)
    expected: a range export begins at its own first link. Without ``signatures`` the caller
    anchors the entries with signed checkpoints (``checkpoint.verify_anchored``). A truncated
    tail cannot be seen here: compare with the signed head.

    Raises:
        ChainBroken: at the first bad entry, with ``seq`` and ``kind``.
    """
    items = list(entries)
    expected_seq, prev_hash = start
    key_id = verify_key.key_id
    for position, entry in enumerate(items):
        if not _is_intact(entry):
            raise ChainBroken(expected_seq, _damage_of_changed(entry, items, expected_seq))
        if entry.key_id != key_id or (signatures and not is_signed(entry, verify_key)):
            raise ChainBroken(expected_seq, "bad_signature")
        if entry.seq != expected_seq:
            if entry.seq < expected_seq:
                raise ChainBroken(entry.seq, "reordered")
            if any(other.seq == expected_seq for other in items[position + 1 :]):
                raise ChainBroken(expected_seq, "reordered")
            raise ChainBroken(expected_seq, "deleted")
        if entry.prev_hash != prev_hash:
            raise ChainBroken(expected_seq, "bad_link")
        expected_seq += 1
        prev_hash = entry.hash
    return len(items)


def entry_from_json(obj: object, *, where: str) -> AuditEntry:
    """Build an AuditEntry from a parsed JSON object, checking every field's type.

    Raises:
        AuditError: a field is missing or has the wrong type (``where`` names the source).
    """
    if not isinstance(obj, dict):
        raise AuditError(f"{where}: an audit entry must be a JSON object")
    expected = {
        "seq": int, "time": str, "actor": str, "event": str, "data": dict,
        "prev_hash": str, "hash": str, "key_id": str, "signature": str,
    }
    if set(obj) != set(expected):
        raise AuditError(f"{where}: entry fields {sorted(obj)} != {sorted(expected)}")
    for name, kind in expected.items():
        value = obj[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise AuditError(f"{where}: field {name!r} must be {kind.__name__}")
    return AuditEntry(
        obj["seq"], obj["time"], obj["actor"], obj["event"], obj["data"],
        obj["prev_hash"], obj["hash"], obj["key_id"], obj["signature"],
    )
