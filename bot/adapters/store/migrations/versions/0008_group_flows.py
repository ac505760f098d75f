"""Store each group's flows as rows of their own, so a commit writes only the flows that changed.

`groups.record` keeps the header only; `group_flows` holds one row per tracked flow, keyed by the
group's key and the flow's identity, with its times as integer microseconds. Records written before
this revision (a header and all its flows in one) are split here; the downgrade joins them again.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from bot.adapters.store.records import (
    FLOW_COLUMNS,
    decode_group,
    decode_group_header,
    encode_group,
    encode_group_header,
    flow_from_row,
    flow_row,
)

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_FLOWS = sa.table(
    "group_flows",
    sa.column("group_key", sa.Text),
    sa.column("flow", sa.Text),
    sa.column("count", sa.BigInteger),
    sa.column("first_seen", sa.BigInteger),
    sa.column("last_seen", sa.BigInteger),
    sa.column("announced", sa.Boolean),
)


def upgrade() -> None:
    op.create_table(
        "group_flows",
        sa.Column("group_key", sa.Text, primary_key=True),
        sa.Column("flow", sa.Text, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("first_seen", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
        sa.Column("announced", sa.Boolean, nullable=False),
    )
    if context.is_offline_mode():
        return
    conn = op.get_bind()
    for key, record in conn.execute(sa.text('SELECT key, record FROM "groups"')).all():
        group = decode_group(record)
        conn.execute(
            sa.text('UPDATE "groups" SET record = :record WHERE key = :key'),
            {"record": encode_group_header(group), "key": key},
        )
        rows = [
            dict(zip(FLOW_COLUMNS, flow_row(key, flow, stats), strict=True))
            for flow, stats in group.flows.items()
        ]
        if rows:
            conn.execute(_FLOWS.insert(), rows)


def downgrade() -> None:
    if not context.is_offline_mode():
        conn = op.get_bind()
        flows = sa.text(
            "SELECT flow, count, first_seen, last_seen, announced FROM group_flows WHERE group_key = :key"
        )
        for key, record in conn.execute(sa.text('SELECT key, record FROM "groups"')).all():
            group = decode_group_header(record)
            group.flows = dict(flow_from_row(*row) for row in conn.execute(flows, {"key": key}))
            conn.execute(
                sa.text('UPDATE "groups" SET record = :record WHERE key = :key'),
                {"record": encode_group(group), "key": key},
            )
    op.drop_table("group_flows")
