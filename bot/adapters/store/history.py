"""The flow history table (`bot.core.history`): cells added in the grouping's transaction, windows
read back per flow and node, and its own retention."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store.database import Database
from bot.adapters.store.tables import flow_history
from bot.core.history import Cell, CellKey, FlowFilter, FlowNode, Window, glob_to_like, hour_of, hour_start

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEY = ("hour", "cluster", "direction", "source", "destination", "dest_port", "protocol", "node", "muted")
_COLUMNS = (*_KEY, "namespace", "attempts", "entries", "first_seen", "last_seen")


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


class HistoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, conn: Connection, cells: Mapping[CellKey, Cell]) -> None:
        """Add cells to what the table holds (in the caller's transaction): attempts and entries
        summed, first and last seen widened."""
        if not cells:
            return
        rows = [
            (
                *key,
                cell.namespace,
                cell.attempts,
                cell.entries,
                micros(cell.first_seen),
                micros(cell.last_seen),
            )
            for key, cell in cells.items()
        ]
        postgres = self.db.engine.dialect.name == "postgresql"
        mark = "%s" if postgres else "?"
        low, high = ("LEAST", "GREATEST") if postgres else ("min", "max")
        table = "flow_history"
        statement = (
            f"INSERT INTO {table} ({', '.join(_COLUMNS)}) VALUES ({', '.join(mark for _ in _COLUMNS)}) "
            f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET "
            f"attempts = {table}.attempts + excluded.attempts, "
            f"entries = {table}.entries + excluded.entries, "
            f"first_seen = {low}({table}.first_seen, excluded.first_seen), "
            f"last_seen = {high}({table}.last_seen, excluded.last_seen)"
        )
        conn.exec_driver_sql(statement, rows)

    def flow_nodes(self, flow_filter: FlowFilter, window: Window) -> list[FlowNode]:
        """Each flow through each node over the window's hours, muted attempts apart."""
        c = flow_history.c
        query = (
            sa.select(
                c.cluster,
                c.direction,
                c.source,
                c.destination,
                c.dest_port,
                c.protocol,
                c.node,
                sa.func.max(c.namespace),
                sa.func.sum(c.attempts),
                sa.func.sum(c.entries),
                sa.func.min(c.first_seen),
                sa.func.max(c.last_seen),
                sa.func.sum(sa.case((c.muted, c.attempts), else_=0)),
            )
            .where(c.hour >= window.first_hour, c.hour <= window.last_hour, *self._filters(flow_filter))
            .group_by(c.cluster, c.direction, c.source, c.destination, c.dest_port, c.protocol, c.node)
        )
        with self.db.connect() as conn:
            return [
                FlowNode(
                    *row[:8],
                    int(row[8]),
                    int(row[9]),
                    from_micros(int(row[10])),
                    from_micros(int(row[11])),
                    int(row[12]),
                )
                for row in conn.execute(query)
            ]

    def _filters(self, flow_filter: FlowFilter) -> list[Any]:
        c = flow_history.c
        conditions: list[Any] = []
        if flow_filter.cluster is not None:
            conditions.append(c.cluster == flow_filter.cluster)
        if flow_filter.namespace is not None:
            conditions.append(c.namespace == flow_filter.namespace)
        if flow_filter.port is not None:
            conditions.append(c.dest_port == flow_filter.port)
        if flow_filter.protocol is not None:
            conditions.append(c.protocol == flow_filter.protocol)
        for column, pattern in ((c.source, flow_filter.src), (c.destination, flow_filter.dst)):
            if pattern is None:
                continue
            if self.db.engine.dialect.name == "sqlite":
                # GLOB is SQLite's case-sensitive `*`/`?` match (its LIKE ignores ASCII case).
                conditions.append(column.op("GLOB")(pattern))
            else:
                conditions.append(column.like(glob_to_like(pattern), escape="\\"))
        return conditions

    def earliest(self) -> datetime | None:
        """The start of the first hour the history holds, or None when it is empty."""
        with self.db.connect() as conn:
            hour = conn.execute(sa.select(sa.func.min(flow_history.c.hour))).scalar()
        return hour_start(int(hour)) if hour is not None else None

    def purge(self, conn: Connection, cutoff: datetime) -> int:
        """Drop the hours before the one `cutoff` falls in (in the caller's transaction)."""
        return int(conn.execute(flow_history.delete().where(flow_history.c.hour < hour_of(cutoff))).rowcount)
