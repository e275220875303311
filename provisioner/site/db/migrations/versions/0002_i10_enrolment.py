"""One-time enrolment: a station confirms its bundle once, recorded with its request id.

Revision ID: i10_enrolment
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i10_enrolment"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the confirmation columns; stations enrolled before count as confirmed."""
    with op.batch_alter_table("stations") as batch:
        batch.add_column(sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("enrolment_request_id", sa.String(64), nullable=True))
    op.execute("UPDATE stations SET enrolled_at = created_at")


def downgrade() -> None:
    """Drop the confirmation columns (a still pending station becomes suspended)."""
    op.execute("UPDATE stations SET status = 'suspended' WHERE status = 'pending'")
    with op.batch_alter_table("stations") as batch:
        batch.drop_column("enrolment_request_id")
        batch.drop_column("enrolled_at")
