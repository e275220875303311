"""The site database schema as typed SQLAlchemy 2 ORM models (design §7)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every site table."""


class Station(Base):
    """An enrolled station; its seed and transport key only wrapped under the master key.

    ``status`` is ``pending`` until the station confirms its one-time enrolment (then
    ``active``), or ``suspended``/``revoked``; ``enrolment_request_id`` is the confirming
    call's id, so a retried confirmation is answered and any other one is an alarm.
    """

    __tablename__ = "stations"

    station_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cert_fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    wrapped_seed: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_transport_key: Mapped[bytes] = mapped_column(LargeBinary)
    next_index: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    enrolled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    enrolment_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Operator(Base):
    """A bench operator: PIN hash and lockout state."""

    __tablename__ = "operators"

    operator_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pin_hash: Mapped[str] = mapped_column(String(256))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Firmware(Base):
    """A signed firmware archive entry; bytes (Intel HEX text) wrapped under the master key."""

    __tablename__ = "firmware"
    __table_args__ = (UniqueConstraint("kind", "product", "version"),)

    firmware_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    product: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)
    wrapped_bytes: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Order(Base):
    """A production order; ``produced``/``reserved`` are kept under the order's row lock."""

    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(64))
    profile_sha256: Mapped[str] = mapped_column(String(64))
    bootloader_id: Mapped[str] = mapped_column(ForeignKey("firmware.firmware_id"))
    application_id: Mapped[str | None] = mapped_column(
        ForeignKey("firmware.firmware_id"), nullable=True
    )
    authorised_quantity: Mapped[int] = mapped_column(Integer)
    produced: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OrderStation(Base):
    """A station allowed to serve an order."""

    __tablename__ = "order_stations"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id"), primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.station_id"), primary_key=True)


class Device(Base):
    """One chip, ever: its device ID, current key (wrapped), expected digest, status."""

    __tablename__ = "devices"

    device_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chip_uid: Mapped[str] = mapped_column(String(64), unique=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id"), index=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.station_id"))
    drbg_index: Mapped[int] = mapped_column(BigInteger)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    image_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Grant(Base):
    """One grant (attempt) for a device; (station, request_id) and (station, index) unique."""

    __tablename__ = "grants"
    __table_args__ = (
        UniqueConstraint("station_id", "request_id"),
        UniqueConstraint("station_id", "drbg_index"),
    )

    grant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64))
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.station_id"))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id"))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.device_id"))
    drbg_index: Mapped[int] = mapped_column(BigInteger)
    operator_id: Mapped[str] = mapped_column(ForeignKey("operators.operator_id"))
    chip_uid: Mapped[str] = mapped_column(String(64))
    result: Mapped[str | None] = mapped_column(String(16), nullable=True)
    complete_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SignInSession(Base):
    """An operator session bound to one station; only the token's SHA-256 is kept."""

    __tablename__ = "sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[str] = mapped_column(ForeignKey("operators.operator_id"))
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.station_id"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Release(Base):
    """A field-update release of a product: image wrapped, manufacturer signature over its terms."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("product", "version"),)

    release_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(BigInteger)
    requires_version: Mapped[int] = mapped_column(BigInteger)
    security_counter: Mapped[int] = mapped_column(BigInteger)
    image_size: Mapped[int] = mapped_column(Integer)
    image_sha512: Mapped[str] = mapped_column(String(128))
    signature: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(32))
    wrapped_image: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Entitlement(Base):
    """The owner's decision on a device's updates; no row means entitled without end."""

    __tablename__ = "entitlements"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.device_id"), primary_key=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UpdateNonce(Base):
    """A request nonce a device used (a second use is ``replayed_nonce``)."""

    __tablename__ = "update_nonces"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.device_id"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UpdateDelivery(Base):
    """A release delivered to a device; (device, release, attempt) unique.

    ``attempt`` is 1 for the first delivery and grows only after the device reported the
    previous one ``rolled_back``: the unique constraint makes racing requests deliver once.
    """

    __tablename__ = "update_deliveries"
    __table_args__ = (UniqueConstraint("device_id", "release_id", "attempt"),)

    delivery_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.device_id"), index=True)
    release_id: Mapped[str] = mapped_column(ForeignKey("releases.release_id"))
    attempt: Mapped[int] = mapped_column(Integer)
    request_nonce: Mapped[str] = mapped_column(String(32))
    request_mac: Mapped[str | None] = mapped_column(String(128), nullable=True)
    package_nonce: Mapped[str | None] = mapped_column(String(24), nullable=True)
    source_address: Mapped[str] = mapped_column(String(64))
    current_version: Mapped[int] = mapped_column(BigInteger)
    delivered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    running_version: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditRow(Base):
    """One audit entry as stored (``data`` is its canonical JSON text)."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))


class AuditHead(Base):
    """The single row whose lock serialises audit appends (design §10), signed as a checkpoint.

    ``signature`` is empty only before the first entry (seq 0).
    """

    __tablename__ = "audit_head"

    head_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    time: Mapped[str] = mapped_column(String(40), server_default="")
    key_id: Mapped[str] = mapped_column(String(32), server_default="")
    signature: Mapped[str] = mapped_column(String(128), server_default="")


class AuditCheckpoint(Base):
    """A periodic signed checkpoint: entry ``seq`` has ``hash`` (every CHECKPOINT_INTERVAL)."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    time: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))
