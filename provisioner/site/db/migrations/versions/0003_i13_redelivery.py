"""Lost-response re-delivery: a delivery keeps its request MAC and package nonce (issue 13).

Revision ID: i13_redelivery
Revises: i13_updates
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i13_redelivery"
down_revision = "i13_updates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns that let the site answer the very same request again.

    Deliveries made before have none: their requests are refused ``replayed_nonce`` as before.
    """
    with op.batch_alter_table("update_deliveries") as batch:
        batch.add_column(sa.Column("request_mac", sa.String(128), nullable=True))
        batch.add_column(sa.Column("package_nonce", sa.String(24), nullable=True))


def downgrade() -> None:
    """Drop the re-delivery columns."""
    with op.batch_alter_table("update_deliveries") as batch:
        batch.drop_column("package_nonce")
        batch.drop_column("request_mac")
