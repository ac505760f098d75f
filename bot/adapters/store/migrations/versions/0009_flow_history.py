"""The flow history: denies rolled up per flow, node and hour (`flow_history`) and per flow, node
and UTC day (`flow_history_daily`, what long windows read), for `/netlog recent`, `top` and the
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
    _create("flow_history", "hour")
    _create("flow_history_daily", "day")


def _create(table: str, bucket: str) -> None:
    op.create_table(
        table,
        sa.Column(bucket, sa.BigInteger, primary_key=True),
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
    op.create_index(f"ix_{table}_namespace_{bucket}", table, ["namespace", bucket])


def downgrade() -> None:
    for table, bucket in (("flow_history_daily", "day"), ("flow_history", "hour")):
        op.drop_index(f"ix_{table}_namespace_{bucket}", table)
        op.drop_table(table)
