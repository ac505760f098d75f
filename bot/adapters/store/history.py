"""The flow history tables (`bot.core.history`): cells added in the grouping's transaction, windows
read back per flow and node or summed per `top` key, and their own retention.

Each cell goes to its hour (`flow_history`) and to its UTC day (`flow_history_daily`). A window
reads its whole days from the daily table and the hours at either edge from the hourly one, so a
week groups ~1/24th of the rows; both give the same answer (the daily rows are sums of the hourly
ones).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store.database import Database
from bot.adapters.store.records import from_micros, micros
from bot.adapters.store.tables import flow_history, flow_history_daily
from bot.core.history import (
    TOP_COLUMNS,
    Cell,
    CellKey,
    FlowFilter,
    FlowNode,
    TopBy,
    Window,
    glob_to_like,
    hour_of,
    key_of,
)

_KEY = ("hour", "cluster", "direction", "source", "destination", "dest_port", "protocol", "node", "muted")
_COLUMNS = (*_KEY, "namespace", "attempts", "entries", "first_seen", "last_seen")
_DAY = 86_400
#: What `flow_nodes` groups by: a flow through a node.
_FLOW_NODE = ("cluster", "direction", "source", "destination", "dest_port", "protocol", "node")
_VALUES = ("namespace", "attempts", "entries", "first_seen", "last_seen", "muted")
#: A table, its bucket column and the first and last bucket read (inclusive).
_Range = tuple[sa.Table, str, int, int]


class HistoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, conn: Connection, cells: Mapping[CellKey, Cell]) -> None:
        """Add cells to their hours and their days (in the caller's transaction): attempts and
        entries summed, first and last seen widened."""
        if not cells:
            return
        self._upsert(conn, "flow_history", cells)
        self._upsert(conn, "flow_history_daily", by_day(cells))

    def _upsert(self, conn: Connection, table: str, cells: Mapping[CellKey, Cell]) -> None:
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
        columns = _COLUMNS if table == "flow_history" else ("day", *_COLUMNS[1:])
        key = columns[: len(_KEY)]
        # A day's namespace is the greatest of its cells', as `flow_nodes` takes the greatest of
        # its hours' (an hourly row keeps its first).
        namespace = (
            "" if table == "flow_history" else f"namespace = {high}({table}.namespace, excluded.namespace), "
        )
        statement = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {namespace}"
            f"attempts = {table}.attempts + excluded.attempts, "
            f"entries = {table}.entries + excluded.entries, "
            f"first_seen = {low}({table}.first_seen, excluded.first_seen), "
            f"last_seen = {high}({table}.last_seen, excluded.last_seen)"
        )
        conn.exec_driver_sql(statement, rows)

    def flow_nodes(self, flow_filter: FlowFilter, window: Window) -> list[FlowNode]:
        """Each flow through each node over the window's hours, muted attempts apart."""
        with self.db.connect() as conn:
            rows = self._rows(conn, flow_filter, window, (*_FLOW_NODE, *_VALUES))
            group = [rows.c[name] for name in _FLOW_NODE]
            query = sa.select(
                *group,
                sa.func.max(rows.c.namespace),
                sa.func.sum(rows.c.attempts),
                sa.func.sum(rows.c.entries),
                sa.func.min(rows.c.first_seen),
                sa.func.max(rows.c.last_seen),
                sa.func.sum(sa.case((rows.c.muted, rows.c.attempts), else_=0)),
            ).group_by(*group)
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

    def sums(self, flow_filter: FlowFilter, window: Window, by: TopBy) -> dict[str, int]:
        """Attempts over the window per `top` key (`sum_by` of `flow_nodes`, grouped by the
        database on the key's columns alone)."""
        columns = TOP_COLUMNS[by]
        sums: dict[str, int] = {}
        with self.db.connect() as conn:
            # Each part (whole days, edge hours) summed by the key first, then the parts merged:
            # the union the outer GROUP BY sorts is a few keys per part instead of every row
            # (a week by flow: 0.8 s instead of 1.3 s on SQLite in `bench/history.py`).
            parts = [
                sa.select(
                    *(table.c[name] for name in columns), sa.func.sum(table.c.attempts).label("attempts")
                )
                .where(table.c[bucket] >= low, table.c[bucket] <= high, *self._filters(flow_filter, table))
                .group_by(*(table.c[name] for name in columns))
                for table, bucket, low, high in self._ranges(conn, window)
            ]
            rows = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery("rows")
            group = [rows.c[name] for name in columns]
            for row in conn.execute(sa.select(*group, sa.func.sum(rows.c.attempts)).group_by(*group)):
                key = key_of(by, dict(zip(columns, row[:-1], strict=True)))
                sums[key] = sums.get(key, 0) + int(row[-1])
        return sums

    def _rows(
        self, conn: Connection, flow_filter: FlowFilter, window: Window, names: Sequence[str]
    ) -> sa.Subquery:
        """The `names` columns of the rows holding the window's hours, filtered."""
        selections = [
            sa.select(*(table.c[name] for name in names)).where(
                table.c[bucket] >= low, table.c[bucket] <= high, *self._filters(flow_filter, table)
            )
            for table, bucket, low, high in self._ranges(conn, window)
        ]
        if len(selections) == 1:
            return selections[0].subquery("rows")
        return sa.union_all(*selections).subquery("rows")

    def _ranges(self, conn: Connection, window: Window) -> list[_Range]:
        """The window's whole UTC days from the daily table and its edge hours from the hourly
        one; all hours when it holds no whole day."""
        first, last = window.first_hour, window.last_hour
        hourly: list[_Range] = [(flow_history, "hour", first, last)]
        start, end = -(-first // _DAY) * _DAY, (last + 3600) // _DAY * _DAY  # whole days: [start, end)
        if end - start < _DAY:
            return hourly
        # A day the retention has partly purged still counts its purged hours: read days only from
        # the first hour held, so a window reaching before it gets what the hours hold.
        held = conn.execute(sa.select(sa.func.min(flow_history.c.hour))).scalar()
        if held is None:
            return hourly
        start = max(start, -(-int(held) // _DAY) * _DAY)
        if end - start < _DAY:
            return hourly
        ranges: list[_Range] = [(flow_history_daily, "day", start, end - _DAY)]
        if first < start:
            ranges.append((flow_history, "hour", first, start - 3600))
        if end <= last:
            ranges.append((flow_history, "hour", end, last))
        return ranges

    def _filters(self, flow_filter: FlowFilter, table: sa.Table = flow_history) -> list[Any]:
        c = table.c
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

    def purge(self, conn: Connection, cutoff: datetime) -> int:
        """Drop the hours before the one `cutoff` falls in, and the days all of whose hours went
        (in the caller's transaction). Returns the hours' rows dropped."""
        hour = hour_of(cutoff)
        daily = flow_history_daily
        conn.execute(daily.delete().where(daily.c.day <= hour - _DAY))
        return int(conn.execute(flow_history.delete().where(flow_history.c.hour < hour)).rowcount)


def by_day(cells: Mapping[CellKey, Cell]) -> dict[CellKey, Cell]:
    """The cells summed per UTC day: the keys' `hour` is the day's start."""
    days: dict[CellKey, Cell] = {}
    for key, cell in cells.items():
        day = key._replace(hour=key.hour - key.hour % _DAY)
        seen = days.get(day)
        if seen is None:
            days[day] = Cell(cell.namespace, cell.attempts, cell.entries, cell.first_seen, cell.last_seen)
            continue
        seen.namespace = max(seen.namespace, cell.namespace)
        seen.attempts += cell.attempts
        seen.entries += cell.entries
        seen.first_seen = min(seen.first_seen, cell.first_seen)
        seen.last_seen = max(seen.last_seen, cell.last_seen)
    return days
