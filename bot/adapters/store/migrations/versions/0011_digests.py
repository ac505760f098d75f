"""The digests queued: one row per channel and period, written in the transaction that queues the
digest's message, so each channel gets each period's digest exactly once across restarts and
replicas (the primary key refuses a second). And the nodes seen at GKE's 500 lines/s cap, per hour
(`node_caps`, written with the flow history), which the digest names.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("period_start", sa.BigInteger, primary_key=True),  # seconds since the epoch, UTC
        sa.Column("period_end", sa.BigInteger, nullable=False),
        sa.Column("queued_at", sa.DateTime, nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
    )
    op.create_table(
        "node_caps",
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("cluster", sa.Text, primary_key=True),
        sa.Column("node", sa.Text, primary_key=True),
        sa.Column("peak", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("node_caps")
    op.drop_table("digests")
