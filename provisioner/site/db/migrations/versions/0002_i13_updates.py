"""Field updates: releases, entitlements, request nonces, deliveries with results (issue 13).

Revision ID: i13_updates
Revises: i12_audit_checkpoints
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i13_updates"
down_revision = "i12_audit_checkpoints"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _device_fk() -> sa.Column[int]:
    return sa.Column("device_id", sa.BigInteger, sa.ForeignKey("devices.device_id"),
                     nullable=False)


def upgrade() -> None:
    """Create releases, entitlements and nonces; replace the unused update_deliveries table."""
    op.create_table(
        "releases",
        sa.Column("release_id", sa.String(64), primary_key=True),
        sa.Column("product", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("requires_version", sa.BigInteger, nullable=False),
        sa.Column("security_counter", sa.BigInteger, nullable=False),
        sa.Column("image_size", sa.Integer, nullable=False),
        sa.Column("image_sha512", sa.String(128), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("wrapped_image", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("product", "version"),
    )
    op.create_index("ix_releases_product", "releases", ["product"])
    op.create_table(
        "entitlements",
        sa.Column("device_id", sa.BigInteger, sa.ForeignKey("devices.device_id"),
                  primary_key=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("until", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "update_nonces",
        sa.Column("device_id", sa.BigInteger, sa.ForeignKey("devices.device_id"),
                  primary_key=True),
        sa.Column("nonce", sa.String(32), primary_key=True),
        sa.Column("seen_at", _TS, nullable=False),
    )
    op.drop_table("update_deliveries")
    op.create_table(
        "update_deliveries",
        sa.Column("delivery_id", sa.Integer, primary_key=True, autoincrement=True),
        _device_fk(),
        sa.Column("release_id", sa.String(64), sa.ForeignKey("releases.release_id"),
                  nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("request_nonce", sa.String(32), nullable=False),
        sa.Column("source_address", sa.String(64), nullable=False),
        sa.Column("current_version", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", _TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("running_version", sa.BigInteger, nullable=True),
        sa.Column("reported_at", _TS, nullable=True),
        sa.UniqueConstraint("device_id", "release_id", "attempt"),
    )
    op.create_index("ix_update_deliveries_device_id", "update_deliveries", ["device_id"])


def downgrade() -> None:
    """Drop the update tables and restore the original update_deliveries table."""
    op.drop_index("ix_update_deliveries_device_id", table_name="update_deliveries")
    op.drop_table("update_deliveries")
    op.create_table(
        "update_deliveries",
        sa.Column("delivery_id", sa.Integer, primary_key=True, autoincrement=True),
        _device_fk(),
        sa.Column("firmware_id", sa.String(64), sa.ForeignKey("firmware.firmware_id"),
                  nullable=False),
        sa.Column("delivered_at", _TS, nullable=False),
        sa.UniqueConstraint("device_id", "firmware_id"),
    )
    op.drop_table("update_nonces")
    op.drop_table("entitlements")
    op.drop_index("ix_releases_product", table_name="releases")
    op.drop_table("releases")
