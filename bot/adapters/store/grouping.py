"""Grouping state: the cursor over stored events and each alert group's state, committed together
with the notifications they produced, so a restart continues exactly where the last commit was.

A group is its header (`groups`) and its flows (`group_flows`). A commit writes what changed since
the last one: headers, flows upserted by (group, flow), evicted flows deleted. In a storm that is a
few thousand rows per step instead of every flow of every busy group."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store.database import Database
from bot.adapters.store.history import HistoryStore
from bot.adapters.store.leases import Fence, check_fence
from bot.adapters.store.outbox import outbox_row
from bot.adapters.store.records import (
    FLOW_COLUMNS,
    decode_group_header,
    encode_flow_key,
    encode_group_header,
    flow_from_row,
    flow_row,
    from_micros,
    micros,
)
from bot.adapters.store.tables import cursors, group_flows, groups, outbox
from bot.core.grouping import Group, GroupChange
from bot.core.history import Cell, CellKey, NodeCap
from bot.core.outbox import OutboxMessage


class GroupStateStore:
    def __init__(self, db: Database, history: HistoryStore) -> None:
        self.db = db
        self.history = history
        #: The history's start is marked in the store (it never goes): no need to look again.
        self._history_marked = False

    def cursor(self, name: str) -> int:
        with self.db.connect() as conn:
            value = conn.execute(sa.select(cursors.c.position).where(cursors.c.name == name)).scalar()
        return int(value or 0)

    def history_started(self) -> datetime | None:
        """Since when the flow history has been kept: the first grouped batch's earliest deny (or
        its commit, if earlier). Windows before it are not the history's to answer."""
        with self.db.connect() as conn:
            value = conn.execute(
                sa.select(cursors.c.position).where(cursors.c.name == HISTORY_START)
            ).scalar()
        return None if value is None else from_micros(int(value) * 1_000_000)

    def headers(self) -> list[Group]:
        """Every group without its flows: for readers that show groups, not their flows (status,
        the Home tab), which `load` would make read every tracked flow."""
        with self.db.connect() as conn:
            return [
                decode_group_header(record) for record in conn.execute(sa.select(groups.c.record)).scalars()
            ]

    def load(self) -> list[Group]:
        with self.db.connect() as conn:
            loaded = {row.key: decode_group_header(row.record) for row in conn.execute(sa.select(groups))}
            query = sa.select(
                group_flows.c.group_key,
                group_flows.c.flow,
                group_flows.c.count,
                group_flows.c.first_seen,
                group_flows.c.last_seen,
                group_flows.c.announced,
            )
            for key, *columns in conn.execute(query):
                group = loaded.get(key)
                if group is not None:
                    flow, stats = flow_from_row(*columns)
                    group.flows[flow] = stats
        return list(loaded.values())

    def commit(
        self,
        cursor_name: str,
        position: int,
        upserts: Sequence[GroupChange | Group],
        deletes: Iterable[str],
        notifications: Sequence[OutboxMessage],
        now: datetime,
        fence: Fence | None = None,
        history: Mapping[CellKey, Cell] | None = None,
        caps: Sequence[NodeCap] = (),
    ) -> None:
        """Advance the cursor, save group state, add the events' flow history (and the nodes they
        show at GKE's line cap) and queue the messages it produced: all or nothing, so the history
        counts each event exactly once.
        A bare `Group` in `upserts` is saved whole, replacing what its key held.

        With a `fence`, the transaction first proves this replica still holds that lease, so a
        leader that stalled past its lease cannot overwrite its successor's groups and count twice."""
        changes = [c if isinstance(c, GroupChange) else GroupChange(c) for c in upserts]
        marked = self._history_marked
        with self.db.begin() as conn:
            check_fence(conn, fence, now)
            _set_cursor(conn, cursor_name, position)
            self._save(conn, changes, list(deletes))
            if history:
                self.history.add(conn, history, now)
                if not marked:
                    _mark_history_start(conn, min(now, *(cell.first_seen for cell in history.values())))
                    marked = True
            self.history.add_caps(conn, caps)
            if notifications:
                conn.execute(outbox.insert(), [outbox_row(n, now) for n in notifications])
        self._history_marked = marked  # only once the transaction that marked it has committed

    def _save(self, conn: Connection, changes: Sequence[GroupChange], deletes: Sequence[str]) -> None:
        whole = [change.group.key for change in changes if change.flows is None]
        if doomed := [*deletes, *whole]:
            conn.execute(group_flows.delete().where(group_flows.c.group_key.in_(doomed)))
        if deletes:
            conn.execute(groups.delete().where(groups.c.key.in_(deletes)))
        if evicted := [{"k": c.group.key, "f": encode_flow_key(flow)} for c in changes for flow in c.evicted]:
            gone = group_flows.delete().where(
                group_flows.c.group_key == sa.bindparam("k"), group_flows.c.flow == sa.bindparam("f")
            )
            conn.execute(gone, evicted)
        if changes:
            headers = [(c.group.key, encode_group_header(c.group)) for c in changes]
            self.db.upsert_rows(conn, groups, ["key"], ["key", "record"], headers)
        rows: list[Any] = []
        for change in changes:
            flows = change.group.flows.items() if change.flows is None else change.flows
            rows.extend(flow_row(change.group.key, flow, stats) for flow, stats in flows)
        if rows:
            self.db.upsert_rows(conn, group_flows, ["group_key", "flow"], FLOW_COLUMNS, rows)


#: The `cursors` row holding when the flow history started (seconds since the epoch).
HISTORY_START = "history_start"


def _mark_history_start(conn: Connection, at: datetime) -> None:
    """Once, at the first commit that adds to the history; later commits leave it."""
    marked = conn.execute(sa.select(cursors.c.position).where(cursors.c.name == HISTORY_START)).scalar()
    if marked is None:
        conn.execute(cursors.insert().values(name=HISTORY_START, position=micros(at) // 1_000_000))


def _set_cursor(conn: Connection, name: str, position: int) -> None:
    updated = conn.execute(cursors.update().where(cursors.c.name == name).values(position=position))
    if updated.rowcount == 0:
        conn.execute(cursors.insert().values(name=name, position=position))
