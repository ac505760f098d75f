"""Rewrite queued outbox rows and group records in the typed shapes.

The outbox's `kind` names the message now (alert_post, alert_edit, thread_reply, audit_line), and
its record is that typed message, rendered only when it is sent; a group record keeps its header
and its flows as separate parts. Rows written before this revision are converted once, here, by
`bot.adapters.store.legacy_records`; nothing else reads the old shapes. Delivered outbox rows are
never read again (retention deletes them), so only pending ones are rewritten. No DDL: `--sql`
prints nothing for it, since there are no rows in an empty database.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import sqlalchemy as sa
from alembic import context, op

from bot.adapters.store.legacy_records import upgrade_group_record, upgrade_outbox_row

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    if context.is_offline_mode():
        return
    conn = op.get_bind()
    pending = sa.text("SELECT id, kind, record, created_at FROM outbox WHERE delivered_at IS NULL")
    for row in conn.execute(pending).all():
        kind, record = upgrade_outbox_row(row.kind, orjson.loads(row.record), _utc(row.created_at))
        conn.execute(
            sa.text("UPDATE outbox SET kind = :kind, record = :record WHERE id = :id"),
            {"kind": kind, "record": record, "id": row.id},
        )
    for key, record in conn.execute(sa.text('SELECT key, record FROM "groups"')).all():
        conn.execute(
            sa.text('UPDATE "groups" SET record = :record WHERE key = :key'),
            {"record": upgrade_group_record(orjson.loads(record)), "key": key},
        )


def downgrade() -> None:
    """Only an idle store goes back: releases before this revision cannot read the typed rows."""
    if context.is_offline_mode():
        return
    conn = op.get_bind()
    queued = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE delivered_at IS NULL")).scalar_one()
    groups = conn.execute(sa.text('SELECT count(*) FROM "groups"')).scalar_one()
    if queued or groups:
        raise RuntimeError(
            f"cannot downgrade below revision 0007 with {queued} queued Slack messages and {groups} "
            "open alert groups: releases before it cannot read them; stop the bot after it has "
            "drained, or restore a backup"
        )


def _utc(value: datetime | str) -> datetime:
    """`created_at` as the driver returns it: a naive UTC datetime (or text, on SQLite)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
