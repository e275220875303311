"""Signed audit head and periodic signed checkpoints (issue 12).

Revision ID: i12_audit_checkpoints
Revises: i10_enrolment
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i12_audit_checkpoints"
down_revision = "i10_enrolment"
branch_labels = None
depends_on = None

_SIGNED = (("time", 40), ("key_id", 32), ("signature", 128))


def upgrade() -> None:
    """Give the head its checkpoint signature; add the table of periodic checkpoints."""
    with op.batch_alter_table("audit_head") as batch:
        for name, size in _SIGNED:
            batch.add_column(sa.Column(name, sa.String(size), nullable=False,
                                       server_default=""))
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    """Drop the checkpoints table and the head's signature columns."""
    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("audit_head") as batch:
        for name, _ in reversed(_SIGNED):
            batch.drop_column(name)
