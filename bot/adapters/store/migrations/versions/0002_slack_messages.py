"""Add slack_messages and outbox.last_error.

An alert group owns one Slack message that later notifications edit in place, so its channel and
ts must survive a restart; last_error tells an operator why a row is still waiting for Slack.
Schema version 2 of the releases before Alembic.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.database import UTCDateTime

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "slack_messages",
        sa.Column("group_id", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("ts", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_slack_messages_updated_at", "slack_messages", ["updated_at"])
    op.add_column("outbox", sa.Column("last_error", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as outbox:
        outbox.drop_column("last_error")
    op.drop_table("slack_messages")
