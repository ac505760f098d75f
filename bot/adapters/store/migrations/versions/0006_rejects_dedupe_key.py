"""Add rejects.dedupe_key, unique.

Pub/Sub redelivers a junk message like any other until it is acked: keep it once. The key is
derived from the message id; NULL (replayed files have no message ids) never collides, so rows kept
before this revision stay as they are. Schema version 6 of the releases before Alembic.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("rejects", sa.Column("dedupe_key", sa.Text))
    op.create_index("ux_rejects_dedupe_key", "rejects", ["dedupe_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_rejects_dedupe_key", table_name="rejects")
    with op.batch_alter_table("rejects") as rejects:
        rejects.drop_column("dedupe_key")
