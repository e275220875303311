"""Initial site schema: stations, operators, firmware, orders, devices, grants, audit.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of design §7 (and the PostgreSQL device-ID sequence)."""
    op.create_table(
        "stations",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("cert_fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("wrapped_seed", sa.LargeBinary, nullable=False),
        sa.Column("wrapped_transport_key", sa.LargeBinary, nullable=False),
        sa.Column("next_index", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "operators",
        sa.Column("operator_id", sa.String(64), primary_key=True),
        sa.Column("pin_hash", sa.String(256), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "firmware",
        sa.Column("firmware_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("product", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("profile", sa.String(64), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("wrapped_bytes", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("kind", "product", "version"),
    )
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("product", sa.String(64), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("profile_sha256", sa.String(64), nullable=False),
        sa.Column("bootloader_id", sa.String(64), sa.ForeignKey("firmware.firmware_id"),
                  nullable=False),
        sa.Column("application_id", sa.String(64), sa.ForeignKey("firmware.firmware_id"),
                  nullable=True),
        sa.Column("authorised_quantity", sa.Integer, nullable=False),
        sa.Column("produced", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "order_stations",
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("station_id", sa.String(64), sa.ForeignKey("stations.station_id"),
                  primary_key=True),
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("chip_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), nullable=False),
        sa.Column("station_id", sa.String(64), sa.ForeignKey("stations.station_id"),
                  nullable=False),
        sa.Column("drbg_index", sa.BigInteger, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_devices_order_id", "devices", ["order_id"])
    op.create_table(
        "grants",
        sa.Column("grant_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("station_id", sa.String(64), sa.ForeignKey("stations.station_id"),
                  nullable=False),
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), nullable=False),
        sa.Column("device_id", sa.BigInteger, sa.ForeignKey("devices.device_id"),
                  nullable=False),
        sa.Column("drbg_index", sa.BigInteger, nullable=False),
        sa.Column("operator_id", sa.String(64), sa.ForeignKey("operators.operator_id"),
                  nullable=False),
        sa.Column("chip_uid", sa.String(64), nullable=False),
        sa.Column("result", sa.String(16), nullable=True),
        sa.Column("complete_request_id", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("completed_at", _TS, nullable=True),
        sa.UniqueConstraint("station_id", "request_id"),
        sa.UniqueConstraint("station_id", "drbg_index"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("operator_id", sa.String(64), sa.ForeignKey("operators.operator_id"),
                  nullable=False),
        sa.Column("station_id", sa.String(64), sa.ForeignKey("stations.station_id"),
                  nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )
    op.create_table(
        "update_deliveries",
        sa.Column("delivery_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.BigInteger, sa.ForeignKey("devices.device_id"),
                  nullable=False),
        sa.Column("firmware_id", sa.String(64), sa.ForeignKey("firmware.firmware_id"),
                  nullable=False),
        sa.Column("delivered_at", _TS, nullable=False),
        sa.UniqueConstraint("device_id", "firmware_id"),
    )
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    op.create_table(
        "audit_head",
        sa.Column("head_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.execute(
        sa.text("INSERT INTO audit_head (head_id, seq, hash) VALUES (1, 0, :genesis)")
        .bindparams(genesis="0" * 64)
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("CREATE SEQUENCE device_id_seq START WITH 1"))


def downgrade() -> None:
    """Drop every table (and the sequence) in reverse dependency order."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("DROP SEQUENCE device_id_seq"))
    for table in ("audit_head", "audit_entries", "update_deliveries", "sessions", "grants"):
        op.drop_table(table)
    op.drop_index("ix_devices_order_id", table_name="devices")
    for table in ("devices", "order_stations", "orders", "firmware", "operators", "stations"):
        op.drop_table(table)
