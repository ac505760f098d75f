"""Schema migrations: each takes the schema from version N-1 to N. Append; never edit a released one."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store import tables as t
from bot.adapters.store.database import Database, Lock

log = logging.getLogger(__name__)

schema_version = sa.Table("schema_version", sa.MetaData(), sa.Column("version", sa.Integer, nullable=False))

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, "create events, rejects, cursors, groups, outbox"),
    (2, "slack_messages: the Slack message each alert group owns; outbox.last_error"),
    (3, "leases: one replica at a time runs grouping and delivery"),
    (4, "mutes, audit, pending_changes: for /netlog"),
    (5, "mutes.group_key: mutes from an alert's button cover that alert only"),
    (6, "rejects.dedupe_key: a redelivered junk message is kept once"),
)


def migrate(db: Database) -> int:
    """Create or upgrade the schema; returns the version now in place. Safe to call on every start."""
    with db.begin(Lock.MIGRATION) as conn:
        schema_version.create(conn, checkfirst=True)
        current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
        for version, description in MIGRATIONS:
            if version > current:
                log.info("store: migrating schema to version %d (%s)", version, description)
                _apply(conn, version)
                conn.execute(schema_version.insert().values(version=version))
                current = version
    return current


def _without(table: sa.Table, *dropped: str) -> sa.Table:
    """`table` as an older schema had it: without the columns (and their indexes) added later."""
    columns = [c._copy() for c in table.columns if c.name not in dropped]
    return sa.Table(table.name, sa.MetaData(), *columns, sqlite_autoincrement=True)


def _apply(conn: Connection, version: int) -> None:
    if version == 1:
        for table in (
            t.events,
            _without(t.rejects, "dedupe_key"),
            t.cursors,
            t.groups,
            _without(t.outbox, "last_error"),
        ):
            table.create(conn, checkfirst=True)
    elif version == 2:
        t.slack_messages.create(conn, checkfirst=True)
        conn.execute(sa.text("ALTER TABLE outbox ADD COLUMN last_error TEXT"))
    elif version == 3:
        t.leases.create(conn, checkfirst=True)
    elif version == 4:
        for table in (_without(t.mutes, "group_key"), t.audit, t.pending_changes):
            table.create(conn, checkfirst=True)
    elif version == 5:
        conn.execute(sa.text("ALTER TABLE mutes ADD COLUMN group_key TEXT"))
    elif version == 6:
        conn.execute(sa.text("ALTER TABLE rejects ADD COLUMN dedupe_key TEXT"))
        conn.execute(sa.text("CREATE UNIQUE INDEX ux_rejects_dedupe_key ON rejects (dedupe_key)"))
