"""The flow history: denies rolled up per flow, node and hour, for `/netlog recent`, `top` and the
digest. Starts empty: it fills from the events grouped after this revision.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "flow_history",
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("cluster", sa.Text, primary_key=True),
        sa.Column("direction", sa.String(16), primary_key=True),
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("destination", sa.Text, primary_key=True),
        sa.Column("dest_port", sa.Integer, primary_key=True),
        sa.Column("protocol", sa.String(16), primary_key=True),
        sa.Column("node", sa.Text, primary_key=True),
        sa.Column("muted", sa.Boolean, primary_key=True),
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("attempts", sa.BigInteger, nullable=False),
        sa.Column("entries", sa.BigInteger, nullable=False),
        sa.Column("first_seen", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_flow_history_namespace_hour", "flow_history", ["namespace", "hour"])


def downgrade() -> None:
    op.drop_index("ix_flow_history_namespace_hour", "flow_history")
    op.drop_table("flow_history")
