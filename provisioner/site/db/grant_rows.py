"""Core statements of the grant hot path: built once at import, compiled once per engine.

No ORM unit of work runs here: each function is one statement on the caller's connection
and returns plain values. Row locks use ``FOR NO KEY UPDATE`` on PostgreSQL for the rows
that inserted devices and grants reference (see ``repo._ROW_LOCK``); SQLite ignores them (its
transactions hold the write lock from ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import (
    BindParameter,
    Connection,
    FromClause,
    Label,
    Table,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from provisioner.site.db import direct
from provisioner.site.db.models import (
    Device,
    Firmware,
    Grant,
    Order,
    OrderStation,
    SignInSession,
    Station,
)

_STATIONS = cast(Table, Station.__table__)
_GRANTS = cast(Table, Grant.__table__)
_SESSIONS = cast(Table, SignInSession.__table__)
_ORDERS = cast(Table, Order.__table__)
_ORDER_STATIONS = cast(Table, OrderStation.__table__)
_DEVICES = cast(Table, Device.__table__)
_FIRMWARE = cast(Table, Firmware.__table__)


@dataclass(frozen=True, slots=True)
class StationRow:
    """A station as the grant path needs it."""

    station_id: str
    status: str
    next_index: int
    cert_fingerprint: str
    wrapped_seed: bytes = field(repr=False)
    wrapped_transport_key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class OrderRow:
    """An order's fixed facts and counters (as read, locked or not)."""

    order_id: str
    status: str
    authorised_quantity: int
    produced: int
    reserved: int
    profile: str
    profile_sha256: str
    bootloader_id: str
    application_id: str | None


_STATION_COLUMNS = (_STATIONS.c.station_id, _STATIONS.c.status, _STATIONS.c.next_index,
                    _STATIONS.c.cert_fingerprint, _STATIONS.c.wrapped_seed,
                    _STATIONS.c.wrapped_transport_key)
_STATION = select(*_STATION_COLUMNS).where(_STATIONS.c.station_id == bindparam("station_id"))


def read_station(conn: Connection, station_id: str) -> StationRow | None:
    """Return a station, read without a lock (:func:`request_facts` takes its row lock)."""
    row = conn.execute(_STATION, {"station_id": station_id}).one_or_none()
    return None if row is None else StationRow(*row)


@dataclass(frozen=True, slots=True)
class GrantRow:
    """What a repeated grant request is answered from."""

    grant_id: str
    order_id: str
    chip_uid: str
    drbg_index: int
    device_id: int
    expires_at: datetime


_GRANT_COLUMNS = (_GRANTS.c.grant_id, _GRANTS.c.order_id, _GRANTS.c.chip_uid,
                  _GRANTS.c.drbg_index, _GRANTS.c.device_id, _GRANTS.c.expires_at)
_ORDER_COLUMNS = (
    _ORDERS.c.order_id, _ORDERS.c.status, _ORDERS.c.authorised_quantity, _ORDERS.c.produced,
    _ORDERS.c.reserved, _ORDERS.c.profile, _ORDERS.c.profile_sha256, _ORDERS.c.bootloader_id,
    _ORDERS.c.application_id,
)


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """Everything a grant request is decided on, read in one statement."""

    station: StationRow | None  # row-locked
    chip: tuple[int, str, str, int] | None  # (device_id, order_id, status, attempts), locked
    session: tuple[str, str, datetime] | None  # (operator_id, station_id, expires_at)
    existing: GrantRow | None
    order: OrderRow | None
    station_allowed: bool
    firmware: dict[str, FirmwareFacts]  # the order's firmware rows that exist, by id


_BOOTLOADER = _FIRMWARE.alias("bootloader")
_APPLICATION = _FIRMWARE.alias("application")
_ANCHOR = select(literal_column("1").label("one")).subquery("anchor")


_FIRMWARE_FACT_NAMES = ("firmware_id", "kind", "product", "version", "sha256", "signature",
                        "profile")


def _facts_columns(table: FromClause, prefix: str) -> list[Label[object]]:
    return [table.c[name].label(f"{prefix}{name}") for name in _FIRMWARE_FACT_NAMES]


_CHIP_COLUMNS = (_DEVICES.c.device_id, _DEVICES.c.order_id, _DEVICES.c.status,
                 _DEVICES.c.attempts)
# The station's and the chip's row locks ride in the same statement as the reads (one round
# trip, not three), each as a locking CTE joined on TRUE so its row is optional. Lock order
# as before: the station (it serialises one station's grants), then a known chip's device row.
_LOCKED_STATION = _STATION.with_for_update(key_share=True).cte("locked_station")
_LOCKED_CHIP = select(*_CHIP_COLUMNS).where(
    _DEVICES.c.chip_uid == bindparam("chip_uid")).with_for_update().cte("locked_chip")
_TRUE = literal_column("1") == literal_column("1")

_REQUEST_FACTS = select(
    *(column.label(f"s_{column.name}") for column in _LOCKED_STATION.c),
    *(column.label(f"c_{column.name}") for column in _LOCKED_CHIP.c),
    _SESSIONS.c.operator_id, _SESSIONS.c.station_id, _SESSIONS.c.expires_at,
    *_GRANT_COLUMNS,
    *(column.label(f"order_{column.name}") for column in _ORDER_COLUMNS),
    exists().where(_ORDER_STATIONS.c.order_id == bindparam("order_id"),
                   _ORDER_STATIONS.c.station_id == bindparam("station_id")).label("allowed"),
    *_facts_columns(_BOOTLOADER, "b_"), *_facts_columns(_APPLICATION, "a_"),
).select_from(
    _ANCHOR
    .outerjoin(_LOCKED_STATION, _TRUE)
    .outerjoin(_LOCKED_CHIP, _TRUE)
    .outerjoin(_SESSIONS, _SESSIONS.c.token_sha256 == bindparam("token_sha256"))
    .outerjoin(_GRANTS, and_(_GRANTS.c.station_id == bindparam("station_id"),
                             _GRANTS.c.request_id == bindparam("request_id")))
    .outerjoin(_ORDERS, _ORDERS.c.order_id == bindparam("order_id"))
    .outerjoin(_BOOTLOADER, _BOOTLOADER.c.firmware_id == _ORDERS.c.bootloader_id)
    .outerjoin(_APPLICATION, _APPLICATION.c.firmware_id == _ORDERS.c.application_id)
)
_S, _C = len(_STATION_COLUMNS), len(_CHIP_COLUMNS)


def request_facts(conn: Connection, *, token_sha256: str, station_id: str, request_id: str,
                  order_id: str, chip_uid: str) -> RequestFacts:
    """Lock the station's row and a known chip's device row, and read the request's session,
    earlier grant, order, station permission and the order's firmware facts: one statement."""
    values = direct.one(conn, _REQUEST_FACTS, {
        "token_sha256": token_sha256, "station_id": station_id, "request_id": request_id,
        "order_id": order_id, "chip_uid": chip_uid})
    station = None if values[0] is None else StationRow(*values[:_S])
    chip = None if values[_S] is None else (
        int(values[_S]), str(values[_S + 1]), str(values[_S + 2]), int(values[_S + 3]))
    rest = values[_S + _C:]
    session = None if rest[0] is None else (rest[0], rest[1], rest[2])
    existing = None if rest[3] is None else GrantRow(*rest[3:9])
    order = None if rest[9] is None else OrderRow(*rest[9:18])
    firmware = {facts.firmware_id: facts for facts in (
        None if rest[19] is None else FirmwareFacts(*rest[19:26]),
        None if rest[26] is None else FirmwareFacts(*rest[26:33]),
    ) if facts is not None}
    return RequestFacts(station, chip, session, existing, order, bool(rest[18]), firmware)


@dataclass(frozen=True, slots=True)
class FirmwareFacts:
    """A firmware row's signed facts and profile (its bytes are read only when not cached)."""

    firmware_id: str
    kind: str
    product: str
    version: str
    sha256: str
    signature: str
    profile: str | None

    def key(self) -> tuple[str, ...]:
        """The facts a signature check covers, as the firmware cache's key."""
        return (self.firmware_id, self.kind, self.product, self.version, self.sha256,
                self.signature)


_FIRMWARE_FACTS = select(
    _FIRMWARE.c.firmware_id, _FIRMWARE.c.kind, _FIRMWARE.c.product, _FIRMWARE.c.version,
    _FIRMWARE.c.sha256, _FIRMWARE.c.signature, _FIRMWARE.c.profile,
).where(_FIRMWARE.c.firmware_id == bindparam("firmware_id"))
_FIRMWARE_BYTES = select(_FIRMWARE.c.wrapped_bytes).where(
    _FIRMWARE.c.firmware_id == bindparam("firmware_id"))


def firmware_facts(conn: Connection | Session, firmware_id: str) -> FirmwareFacts | None:
    """Return a firmware row's facts, if the row exists."""
    row = conn.execute(_FIRMWARE_FACTS, {"firmware_id": firmware_id}).one_or_none()
    return None if row is None else FirmwareFacts(*row)


def firmware_bytes(conn: Connection | Session, firmware_id: str) -> bytes | None:
    """Return a firmware row's wrapped bytes, if the row exists."""
    value = conn.execute(_FIRMWARE_BYTES, {"firmware_id": firmware_id}).scalar_one_or_none()
    return None if value is None else bytes(value)


_NEXT_DEVICE_ID_PG = text("SELECT nextval('device_id_seq')")
_MAX_DEVICE_ID = select(func.max(_DEVICES.c.device_id))


def allocate_device_id(conn: Connection) -> int:
    """Return a new device ID: a sequence on PostgreSQL, max+1 under SQLite's write lock."""
    if conn.dialect.name == "postgresql":
        return int(direct.one(conn, _NEXT_DEVICE_ID_PG, {})[0])
    current = conn.execute(_MAX_DEVICE_ID).scalar_one()
    return 1 if current is None else int(current) + 1


def _bound(table: Table, prefix: str, names: tuple[str, ...]) -> dict[str, BindParameter[object]]:
    # Prefixed bind names: a statement of several parts shares one parameter dict.
    return {name: bindparam(prefix + name, type_=table.c[name].type) for name in names}


_DEVICE_FIELDS = ("station_id", "drbg_index", "wrapped_key", "image_sha256", "status",
                  "updated_at")
_INSERT_DEVICE = insert(_DEVICES).values(_bound(
    _DEVICES, "d_", ("device_id", "chip_uid", "order_id", "attempts", "created_at",
                     *_DEVICE_FIELDS)))
_REGRANT_DEVICE = update(_DEVICES).where(
    _DEVICES.c.device_id == bindparam("d_device_id")).values(
    _bound(_DEVICES, "d_", _DEVICE_FIELDS))
_INSERT_GRANT = insert(_GRANTS).values(_bound(
    _GRANTS, "g_", ("grant_id", "request_id", "station_id", "order_id", "device_id",
                    "drbg_index", "operator_id", "chip_uid", "created_at", "expires_at")))
_ADVANCE_STATION = update(_STATIONS).where(
    _STATIONS.c.station_id == bindparam("g_station_id")).values(
    next_index=bindparam("s_next_index"))
# PostgreSQL: the three writes in one round trip. Every part sees the same snapshot and the
# foreign keys are checked at the end of the statement, after the device row exists.
_STORE_NEW_PG = _ADVANCE_STATION.add_cte(_INSERT_DEVICE.cte("new_device")).add_cte(
    _INSERT_GRANT.cte("new_grant"))
_STORE_REGRANT_PG = _ADVANCE_STATION.add_cte(_REGRANT_DEVICE.cte("regranted_device")).add_cte(
    _INSERT_GRANT.cte("new_grant"))


def store_grant(
    conn: Connection, *, new_device: bool, grant_id: str, request_id: str, device_id: int,
    chip_uid: str, order_id: str, station_id: str, drbg_index: int, operator_id: str,
    wrapped_key: bytes, image_sha256: str, now: datetime, expires_at: datetime,
) -> None:
    """Store a chip's ``reserved`` device row (a new one, or a failed chip's row granted
    again), the grant row, and move the station's next index past the grant.

    Raises:
        sqlalchemy.exc.IntegrityError: a new row for a chip another grant inserted meanwhile.
    """
    params = {
        "d_device_id": device_id, "d_chip_uid": chip_uid, "d_order_id": order_id,
        "d_attempts": 0, "d_created_at": now, "d_station_id": station_id,
        "d_drbg_index": drbg_index, "d_wrapped_key": wrapped_key,
        "d_image_sha256": image_sha256, "d_status": "reserved", "d_updated_at": now,
        "g_grant_id": grant_id, "g_request_id": request_id, "g_station_id": station_id,
        "g_order_id": order_id, "g_device_id": device_id, "g_drbg_index": drbg_index,
        "g_operator_id": operator_id, "g_chip_uid": chip_uid, "g_created_at": now,
        "g_expires_at": expires_at, "s_next_index": drbg_index + 1,
    }
    if conn.dialect.name == "postgresql":
        direct.rows(conn, _STORE_NEW_PG if new_device else _STORE_REGRANT_PG, params)
        return
    conn.execute(_INSERT_DEVICE if new_device else _REGRANT_DEVICE, params)
    conn.execute(_INSERT_GRANT, params)
    conn.execute(_ADVANCE_STATION, params)

@dataclass(frozen=True, slots=True)
class LockedGrant:
    """A grant row as a completion needs it, read under its row lock."""

    grant_id: str
    station_id: str
    order_id: str
    device_id: int
    drbg_index: int
    operator_id: str
    result: str | None
    complete_request_id: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LockedDevice:
    """A device row as a completion needs it, read under its row lock."""

    device_id: int
    chip_uid: str
    status: str
    attempts: int
    image_sha256: str


_GRANT_LOCK_COLUMNS = (
    _GRANTS.c.grant_id, _GRANTS.c.station_id, _GRANTS.c.order_id, _GRANTS.c.device_id,
    _GRANTS.c.drbg_index, _GRANTS.c.operator_id, _GRANTS.c.result,
    _GRANTS.c.complete_request_id, _GRANTS.c.expires_at,
)
_DEVICE_LOCK_COLUMNS = (_DEVICES.c.device_id, _DEVICES.c.chip_uid, _DEVICES.c.status,
                        _DEVICES.c.attempts, _DEVICES.c.image_sha256)
# Lock order as in every grant path: the grant's row, then its device's row.
_LOCKED_GRANT = select(*_GRANT_LOCK_COLUMNS).where(
    _GRANTS.c.grant_id == bindparam("grant_id")).with_for_update().cte("locked_grant")
_LOCKED_DEVICE = select(*_DEVICE_LOCK_COLUMNS).where(
    _DEVICES.c.device_id == select(_LOCKED_GRANT.c.device_id).scalar_subquery()
).with_for_update().cte("locked_device")
_COMPLETION_FACTS = select(
    _STATIONS.c.status, _STATIONS.c.cert_fingerprint,
    _SESSIONS.c.operator_id, _SESSIONS.c.station_id, _SESSIONS.c.expires_at,
    *(column.label(f"g_{column.name}") for column in _LOCKED_GRANT.c),
    *(column.label(f"d_{column.name}") for column in _LOCKED_DEVICE.c),
).select_from(
    _ANCHOR
    .outerjoin(_STATIONS, _STATIONS.c.station_id == bindparam("station_id"))
    .outerjoin(_SESSIONS, _SESSIONS.c.token_sha256 == bindparam("token_sha256"))
    .outerjoin(_LOCKED_GRANT, _TRUE)
    .outerjoin(_LOCKED_DEVICE, _TRUE)
)
_G = len(_GRANT_LOCK_COLUMNS)


@dataclass(frozen=True, slots=True)
class CompletionFacts:
    """A completion's station and session, and its grant and device rows under their row
    locks."""

    station: tuple[str, str] | None  # (status, cert_fingerprint)
    session: tuple[str, str, datetime] | None  # (operator_id, station_id, expires_at)
    grant: LockedGrant | None
    device: LockedDevice | None


def completion_facts(conn: Connection, *, station_id: str, token_sha256: str, grant_id: str
                     ) -> CompletionFacts:
    """Read a completion's station and session, and lock and read its grant and device: one
    statement."""
    values = direct.one(conn, _COMPLETION_FACTS, {
        "station_id": station_id, "token_sha256": token_sha256, "grant_id": grant_id})
    station = None if values[0] is None else (str(values[0]), str(values[1]))
    session = None if values[2] is None else (values[2], values[3], values[4])
    grant = None if values[5] is None else LockedGrant(*values[5:5 + _G])
    device = None if values[5 + _G] is None else LockedDevice(*values[5 + _G:])
    return CompletionFacts(station, session, grant, device)


_COMPLETE_DEVICE = update(_DEVICES).where(
    _DEVICES.c.device_id == bindparam("match_device_id")).values(
    status=bindparam("new_status"), attempts=bindparam("new_attempts"),
    updated_at=bindparam("now"))
_COMPLETE_GRANT = update(_GRANTS).where(
    _GRANTS.c.grant_id == bindparam("match_grant_id")).values(
    result=bindparam("new_result"), complete_request_id=bindparam("new_request_id"),
    completed_at=bindparam("now"))
# PostgreSQL: both updates in one round trip (rows already locked by this transaction).
_COMPLETE_BOTH_PG = _COMPLETE_GRANT.add_cte(_COMPLETE_DEVICE.cte("completed_device"))


def record_outcome(
    conn: Connection, *, grant_id: str, device_id: int, status: str, attempts: int,
    result: str, request_id: str, now: datetime,
) -> None:
    """Store a completion on its (locked) device and grant rows."""
    params = {"match_device_id": device_id, "new_status": status, "new_attempts": attempts,
              "now": now, "match_grant_id": grant_id, "new_result": result,
              "new_request_id": request_id}
    if conn.dialect.name == "postgresql":
        direct.rows(conn, _COMPLETE_BOTH_PG, params)
        return
    conn.execute(_COMPLETE_DEVICE, params)
    conn.execute(_COMPLETE_GRANT, params)
