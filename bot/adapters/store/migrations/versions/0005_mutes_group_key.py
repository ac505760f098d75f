"""Add mutes.group_key.

A mute from an alert's Mute button covers that alert's group only (its route and labels), not
every group the same matchers would match in other routes; NULL for mutes made with `/netlog mute`.
Schema version 5 of the releases before Alembic.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("mutes", sa.Column("group_key", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("mutes") as mutes:
        mutes.drop_column("group_key")
