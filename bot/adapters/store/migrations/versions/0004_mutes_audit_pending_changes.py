"""Add mutes, audit and pending_changes.

What `/netlog` changes must outlive a restart and be the same on every replica: mutes silence
matching alerts until they expire, audit records who changed what, and pending_changes holds a
change between its confirmation card and the click that applies it (exactly once). Schema version
4 of the releases before Alembic.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.database import UTCDateTime

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# As in 0001: AUTOINCREMENT on SQLite, so a mute id is never handed out twice.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mutes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_mutes_expires_at", "mutes", ["expires_at"])
    op.create_table(
        "audit",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("cluster", sa.Text),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_table(
        "pending_changes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    for table in ("pending_changes", "audit", "mutes"):
        op.drop_table(table)
