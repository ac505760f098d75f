"""Grouping state: the cursor over stored events and each alert group's state, committed together
with the notifications they produced, so a restart continues exactly where the last commit was."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store.database import Database
from bot.adapters.store.leases import Fence, check_fence
from bot.adapters.store.outbox import outbox_row
from bot.adapters.store.records import decode_group, encode_group
from bot.adapters.store.tables import cursors, groups, outbox
from bot.core.grouping import Group
from bot.core.outbox import OutboxMessage


class GroupStateStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def cursor(self, name: str) -> int:
        with self.db.connect() as conn:
            value = conn.execute(sa.select(cursors.c.position).where(cursors.c.name == name)).scalar()
        return int(value or 0)

    def load(self) -> list[Group]:
        with self.db.connect() as conn:
            return [decode_group(text) for text in conn.execute(sa.select(groups.c.record)).scalars()]

    def commit(
        self,
        cursor_name: str,
        position: int,
        upserts: Sequence[Group],
        deletes: Iterable[str],
        notifications: Sequence[OutboxMessage],
        now: datetime,
        fence: Fence | None = None,
    ) -> None:
        """Advance the cursor, save group state and queue the messages it produced: all or nothing.

        With a `fence`, the transaction first proves this replica still holds that lease, so a
        leader that stalled past its lease cannot overwrite its successor's groups and count twice."""
        with self.db.begin() as conn:
            check_fence(conn, fence, now)
            _set_cursor(conn, cursor_name, position)
            doomed = [*deletes, *(group.key for group in upserts)]
            if doomed:
                conn.execute(groups.delete().where(groups.c.key.in_(doomed)))
            if upserts:
                conn.execute(groups.insert(), [{"key": g.key, "record": encode_group(g)} for g in upserts])
            if notifications:
                conn.execute(outbox.insert(), [outbox_row(n, now) for n in notifications])


def _set_cursor(conn: Connection, name: str, position: int) -> None:
    updated = conn.execute(cursors.update().where(cursors.c.name == name).values(position=position))
    if updated.rowcount == 0:
        conn.execute(cursors.insert().values(name=name, position=position))
