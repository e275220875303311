"""Queries the site runs inside its transactions: row locks, snapshots, audit appends."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from provisioner.audit.chain import AuditEntry, build_entry
from provisioner.audit.checkpoint import CHECKPOINT_INTERVAL, Checkpoint, sign_checkpoint
from provisioner.crypto.signing import Signer
from provisioner.errors import AuditError
from provisioner.site.db import direct
from provisioner.site.db.direct import Executor
from provisioner.site.db.engine import is_postgresql
from provisioner.site.db.models import (
    AuditCheckpoint,
    AuditHead,
    AuditRow,
    Grant,
    Order,
    Station,
)
from provisioner.site.policy import OrderSnapshot

AUDIT_HEAD_ID = 1

# A transaction's handle: an ORM session, or the Core connection of the grant hot path.

_AUDIT_ROWS = cast(Table, AuditRow.__table__)
_AUDIT_HEAD = cast(Table, AuditHead.__table__)
_AUDIT_CHECKPOINTS = cast(Table, AuditCheckpoint.__table__)
_ORDERS = cast(Table, Order.__table__)


def _is_postgresql(executor: Executor) -> bool:
    if isinstance(executor, Connection):
        return executor.dialect.name == "postgresql"
    return is_postgresql(executor)


# FOR NO KEY UPDATE on PostgreSQL: it serialises the lockers of a row but does not conflict
# with the FOR KEY SHARE locks that inserting rows referencing it (devices, grants) take;
# plain FOR UPDATE would deadlock two grants that each inserted a device before locking.
_ROW_LOCK = {"key_share": True}


def lock_station(session: Session, station_id: str) -> Station | None:
    """Load a station under a row lock (serialises one station's grants)."""
    return session.get(Station, station_id, with_for_update=_ROW_LOCK, populate_existing=True)


def lock_order(session: Session, order_id: str) -> Order | None:
    """Load an order under a row lock (serialises its quota)."""
    return session.get(Order, order_id, with_for_update=_ROW_LOCK, populate_existing=True)


def find_grant_at_index(session: Session, station_id: str, drbg_index: int) -> Grant | None:
    """Return the grant a station already received for ``drbg_index``, if any."""
    return session.scalars(
        select(Grant).where(Grant.station_id == station_id, Grant.drbg_index == drbg_index)
    ).first()


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq, time=row.time, actor=row.actor, event=row.event,
        data=json.loads(row.data), prev_hash=row.prev_hash, hash=row.hash,
        key_id=row.key_id, signature=row.signature,
    )


@dataclass(frozen=True, slots=True)
class AuditHeadState:
    """The audit head read under its row lock: the last entry's seq and hash."""

    seq: int
    hash: str


# PostgreSQL: the order's counter and the audit head in one round trip. The LATERAL
# reference to the updated row makes the head wait for the order's lock: the same lock order
# (order, then audit head) as every other path, so no deadlock.
_RESERVE_AND_LOCK_HEAD = text("""
WITH reserved AS (
    UPDATE orders SET reserved = reserved + 1 WHERE order_id = :order_id
    RETURNING status, authorised_quantity, produced, reserved
)
SELECT r.status, r.authorised_quantity, r.produced, r.reserved, h.seq, h.hash
FROM reserved AS r CROSS JOIN LATERAL (
    SELECT seq, hash FROM audit_head WHERE head_id = :head_id AND r.reserved IS NOT NULL
    FOR NO KEY UPDATE
) AS h
""")


_RESERVE = (
    update(_ORDERS).where(_ORDERS.c.order_id == bindparam("match_order_id"))
    .values(reserved=_ORDERS.c.reserved + 1)
    .returning(_ORDERS.c.status, _ORDERS.c.authorised_quantity, _ORDERS.c.produced,
               _ORDERS.c.reserved)
)


def reserve_unit(
    executor: Executor, order_id: str, allowed: frozenset[str]
) -> tuple[OrderSnapshot, AuditHeadState] | None:
    """Add one to an order's reserved count under its row lock, then lock the audit head.

    Returns the order as it was just before the increment, for the caller's policy check (a
    refusal raises and rolls the increment back), and the audit head for
    :func:`write_audit`; ``None`` if the order does not exist. A session's pending ORM
    changes are flushed first. An ``Order`` object already in the session keeps its stale
    counters.
    """
    if isinstance(executor, Session):
        executor.flush()
    if _is_postgresql(executor):
        found = direct.one_or_none(
            executor, _RESERVE_AND_LOCK_HEAD, {"order_id": order_id, "head_id": AUDIT_HEAD_ID})
        if found is None:
            return None
        status, authorised, produced, reserved, seq, head_hash = found
        head = AuditHeadState(int(seq), str(head_hash))
    else:
        row = executor.execute(_RESERVE, {"match_order_id": order_id}).one_or_none()
        if row is None:
            return None
        status, authorised, produced, reserved = row
        head = lock_audit_head(executor)
    return OrderSnapshot(
        order_id=order_id, status=status, authorised_quantity=authorised,
        produced=produced, reserved=reserved - 1, allowed_stations=allowed,
    ), head


_LOCK_HEAD = (
    select(_AUDIT_HEAD.c.seq, _AUDIT_HEAD.c.hash)
    .where(_AUDIT_HEAD.c.head_id == AUDIT_HEAD_ID).with_for_update(key_share=True)
)


# PostgreSQL: a completion's counters and the audit head in one round trip (lock order as in
# _RESERVE_AND_LOCK_HEAD: the order's row, then the head).
_SETTLE_AND_LOCK_HEAD = text("""
WITH settled AS (
    UPDATE orders SET produced = produced + :produced_delta,
                      reserved = reserved + :reserved_delta
    WHERE order_id = :order_id
    RETURNING profile
)
SELECT s.profile, h.seq, h.hash
FROM settled AS s CROSS JOIN LATERAL (
    SELECT seq, hash FROM audit_head WHERE head_id = :head_id AND s.profile IS NOT NULL
    FOR NO KEY UPDATE
) AS h
""")
_SETTLE = (
    update(_ORDERS).where(_ORDERS.c.order_id == bindparam("match_order_id"))
    .values(produced=_ORDERS.c.produced + bindparam("produced_delta"),
            reserved=_ORDERS.c.reserved + bindparam("reserved_delta"))
    .returning(_ORDERS.c.profile)
)


def settle_unit(
    executor: Executor, order_id: str, *, produced_delta: int, reserved_delta: int
) -> tuple[str, AuditHeadState] | None:
    """Apply a completion's deltas to an order's counters under its row lock, then lock the
    audit head; return the order's profile and the head (``None``: no such order)."""
    # Only bind names that are not column names: an UPDATE sets any column named in them.
    deltas = {"produced_delta": produced_delta, "reserved_delta": reserved_delta}
    if _is_postgresql(executor):
        found = direct.one_or_none(executor, _SETTLE_AND_LOCK_HEAD, {
            **deltas, "order_id": order_id, "head_id": AUDIT_HEAD_ID})
        if found is None:
            return None
        profile, seq, head_hash = found
        return str(profile), AuditHeadState(int(seq), str(head_hash))
    profile = executor.execute(_SETTLE, {**deltas, "match_order_id": order_id}
                               ).scalar_one_or_none()
    if profile is None:
        return None
    return str(profile), lock_audit_head(executor)


def lock_audit_head(executor: Executor) -> AuditHeadState:
    """Read the audit head under its row lock (held until the transaction ends).

    Raises:
        AuditError: the head row is missing.
    """
    row = executor.execute(_LOCK_HEAD).one_or_none()
    if row is None:
        raise AuditError("audit head row is missing (database not migrated?)")
    return AuditHeadState(row.seq, row.hash)


def append_audit(
    session: Executor,
    *,
    signer: Signer,
    now: datetime,
    actor: str,
    event: str,
    data: Mapping[str, object],
) -> AuditEntry:
    """Append a signed entry in the caller's transaction, holding the audit head's row lock.

    Pending ORM changes are flushed before the head is locked; the lock is then held for two
    statements (read the head, write entry and head) and the commit.

    Raises:
        AuditError: the head row is missing.
    """
    head = lock_audit_head(session)
    return write_audit(session, head, signer=signer, now=now, actor=actor, event=event,
                       data=data)


def write_audit(
    session: Executor,
    head: AuditHeadState,
    *,
    signer: Signer,
    now: datetime,
    actor: str,
    event: str,
    data: Mapping[str, object],
) -> AuditEntry:
    """Sign the entry following ``head`` (locked by this transaction) and store it."""
    # build_entry links on the previous entry's seq and hash only, and the head row carries
    # both, so the previous row is not read (one round trip less inside the global lock).
    prev = None if head.seq == 0 else AuditEntry(
        seq=head.seq, time="", actor="", event="", data={}, prev_hash="", hash=head.hash,
        key_id="", signature="",
    )
    entry = build_entry(prev=prev, time=now, actor=actor, event=event, data=data, signer=signer)
    # The head is signed with every entry, so a chain cut short no longer matches it.
    signed = sign_checkpoint(entry.seq, entry.hash, entry.time, signer)
    values = {
        "entry_seq": entry.seq, "entry_time": entry.time, "entry_actor": entry.actor,
        "entry_event": entry.event,
        "entry_data": json.dumps(entry.data, sort_keys=True, separators=(",", ":")),
        "entry_prev_hash": entry.prev_hash, "entry_hash": entry.hash,
        "entry_key_id": entry.key_id, "entry_signature": entry.signature,
        "head_seq": entry.seq, "head_hash": entry.hash, "head_time": signed.time,
        "head_key_id": signed.key_id, "head_signature": signed.signature,
    }
    if entry.seq % CHECKPOINT_INTERVAL == 0:
        session.execute(insert(_AUDIT_CHECKPOINTS).values(**signed.to_dict()))
    if _is_postgresql(session):
        # One round trip: the entry's INSERT rides along with the head's UPDATE.
        direct.rows(session, _MOVE_HEAD_WITH_ENTRY, values)
    else:
        session.execute(_INSERT_ENTRY, values)
        session.execute(_MOVE_HEAD, values)
    return entry


_INSERT_ENTRY = insert(_AUDIT_ROWS).values(
    {name: bindparam(f"entry_{name}") for name in (
        "seq", "time", "actor", "event", "data", "prev_hash", "hash", "key_id", "signature")})
_MOVE_HEAD = (
    update(_AUDIT_HEAD).where(_AUDIT_HEAD.c.head_id == AUDIT_HEAD_ID)
    .values(seq=bindparam("head_seq"), hash=bindparam("head_hash"), time=bindparam("head_time"),
            key_id=bindparam("head_key_id"), signature=bindparam("head_signature"))
)
_MOVE_HEAD_WITH_ENTRY = _MOVE_HEAD.add_cte(_INSERT_ENTRY.cte("new_entry"))


def audit_entries(
    session: Session, first_seq: int = 1, last_seq: int | None = None
) -> list[AuditEntry]:
    """Return the audit entries from ``first_seq`` to ``last_seq`` (inclusive) in seq order."""
    query = select(AuditRow).where(AuditRow.seq >= first_seq).order_by(AuditRow.seq)
    if last_seq is not None:
        query = query.where(AuditRow.seq <= last_seq)
    return [_entry(row) for row in session.scalars(query)]


def signed_head(session: Session) -> Checkpoint:
    """Return the audit head as its signed checkpoint (unsigned only at seq 0).

    Raises:
        AuditError: the head row is missing.
    """
    row = session.get(AuditHead, AUDIT_HEAD_ID, populate_existing=True)
    if row is None:
        raise AuditError("audit head row is missing (database not migrated?)")
    return Checkpoint(row.seq, row.hash, row.time, row.key_id, row.signature)


def checkpoints(session: Session, first_seq: int = 0, last_seq: int | None = None
                ) -> list[Checkpoint]:
    """Return the stored periodic checkpoints with ``first_seq <= seq <= last_seq``."""
    query = select(AuditCheckpoint).where(AuditCheckpoint.seq >= first_seq)
    if last_seq is not None:
        query = query.where(AuditCheckpoint.seq <= last_seq)
    return [Checkpoint(r.seq, r.hash, r.time, r.key_id, r.signature)
            for r in session.scalars(query.order_by(AuditCheckpoint.seq))]
