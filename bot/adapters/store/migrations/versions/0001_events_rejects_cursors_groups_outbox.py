"""Create events, rejects, cursors, groups and outbox: the first release's schema.

Events are kept as received (deduplicated by Pub/Sub's insert_id) and consumed by grouping through
a cursor; rejects keep unreadable messages for inspection; groups hold the grouper's open alert
groups; the outbox holds Slack messages until Slack accepted them. This is schema version 1 of the
releases before Alembic.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.database import UTCDateTime

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# SQLite autoincrements INTEGER keys only, and reuses max(id) + 1 after a purge unless the table is
# AUTOINCREMENT: ids that cursors read past must never come back.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("insert_id", sa.String(255), nullable=False, unique=True),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("timestamp", UTCDateTime, nullable=False),
        sa.Column("cluster", sa.Text),
        sa.Column("namespace", sa.Text),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_timestamp", "events", ["timestamp"])
    op.create_table(
        "rejects",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("message_id", sa.Text),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("raw_size", sa.Integer, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_rejects_received_at", "rejects", ["received_at"])
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "groups",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("group_id", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("delivered_at", UTCDateTime),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_delivered_at", "outbox", ["delivered_at"])


def downgrade() -> None:
    for table in ("outbox", "groups", "cursors", "rejects", "events"):
        op.drop_table(table)
