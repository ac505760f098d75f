"""The flow history tables (`bot.core.history`): cells added in the grouping's transaction, windows
read back per flow and node or summed per `top` key, and their own retention.

Each cell goes to its hour (`flow_history`). A UTC day is summed into `flow_history_daily` once,
when it is over: the first commit after its midnight adds its hours' rows up in the database, and a
late cell for a day already summed goes to both tables. So a storm writes one row per cell and
step, not two, and the daily rows always equal the sums of the hours of every *closed* day. The
first day still open is kept in `cursors` (`DAILY_OPEN`), written in the same transaction.

A window reads its closed whole days from the daily table and every other hour from the hourly
one, so a week groups ~1/24th of the rows; both give the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store.database import Database
from bot.adapters.store.records import from_micros, micros
from bot.adapters.store.tables import cursors, flow_history, flow_history_daily, node_caps
from bot.core.digest import FlowHour, Identity
from bot.core.history import (
    TOP_COLUMNS,
    Cell,
    CellKey,
    FlowFilter,
    FlowNode,
    NodeCap,
    TopBy,
    Window,
    glob_to_like,
    hour_of,
    key_of,
)

_KEY = ("hour", "cluster", "direction", "source", "destination", "dest_port", "protocol", "node", "muted")
_COLUMNS = (*_KEY, "namespace", "attempts", "entries", "first_seen", "last_seen")
_DAY = 86_400
#: The `cursors` row holding the first UTC day (seconds since the epoch) not yet summed into
#: `flow_history_daily`: every day before it is, and no day from it on.
DAILY_OPEN = "history_daily_open"
#: What `flow_nodes` groups by: a flow through a node.
_FLOW_NODE = ("cluster", "direction", "source", "destination", "dest_port", "protocol", "node")
#: A flow, all nodes together: what the digest groups by.
_FLOW = ("cluster", "direction", "source", "destination", "dest_port", "protocol")
_VALUES = ("namespace", "attempts", "entries", "first_seen", "last_seen", "muted")
#: A table, its bucket column and the first and last bucket read (inclusive).
_Range = tuple[sa.Table, str, int, int]


class HistoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, conn: Connection, cells: Mapping[CellKey, Cell], now: datetime) -> None:
        """Add cells to their hours (in the caller's transaction): attempts and entries summed,
        first and last seen widened. Cells of days already summed go to their days too; then the
        days `now` has closed are summed (`close_days`)."""
        if not cells:
            return
        self._upsert(conn, "flow_history", cells)
        open_day = _open_day(conn)
        if open_day is not None:
            late = {key: cell for key, cell in cells.items() if key.hour < open_day}
            if late:
                self._upsert(conn, "flow_history_daily", by_day(late))
        self._close(conn, now, open_day)

    def close_days(self, conn: Connection, now: datetime) -> int:
        """Sum the hours of each UTC day before `now`'s that is not summed yet into its daily rows,
        in the database, and mark them summed (in the caller's transaction). Returns how many days
        were closed: none but after a midnight."""
        return self._close(conn, now, _open_day(conn))

    def _close(self, conn: Connection, now: datetime, opened: int | None) -> int:
        """`close_days`, given the open day as the transaction last read it."""
        today = hour_of(now) // _DAY * _DAY
        open_day = opened
        if open_day is None:  # nothing summed yet: from the first hour held, if any
            held = conn.execute(sa.select(sa.func.min(flow_history.c.hour))).scalar()
            if held is None:
                return 0
            open_day = min(today, int(held) // _DAY * _DAY)
        closed = max(0, (today - open_day) // _DAY)
        if closed:
            self._close_days(conn, open_day, today)
            open_day = today
        if open_day != opened:
            _set_open_day(conn, open_day, opened is None)
        return closed

    def _close_days(self, conn: Connection, first: int, end: int) -> None:
        """Sum the hours of the days in [first, end) into their days: once, when they are over."""
        day = f"hour / {_DAY} * {_DAY}"  # integer division on both databases (hours are not negative)
        names = ", ".join(_KEY[1:])
        low, high = ("LEAST", "GREATEST") if self._postgres else ("min", "max")
        table = "flow_history_daily"
        conn.exec_driver_sql(
            f"INSERT INTO {table} (day, {names}, namespace, attempts, entries, first_seen, last_seen) "
            f"SELECT {day}, {names}, max(namespace), sum(attempts), sum(entries), min(first_seen), "
            f"max(last_seen) FROM flow_history WHERE hour >= {int(first)} AND hour < {int(end)} "
            f"GROUP BY {day}, {names} "
            f"ON CONFLICT (day, {names}) DO UPDATE SET "
            f"namespace = {high}({table}.namespace, excluded.namespace), "
            f"attempts = {table}.attempts + excluded.attempts, "
            f"entries = {table}.entries + excluded.entries, "
            f"first_seen = {low}({table}.first_seen, excluded.first_seen), "
            f"last_seen = {high}({table}.last_seen, excluded.last_seen)"
        )

    @property
    def _postgres(self) -> bool:
        return self.db.engine.dialect.name == "postgresql"

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
        # In key order: consecutive rows land on the same index pages (a storm's step wrote its
        # cells about a quarter faster on SQLite than in arrival order), and two transactions that
        # touch the same rows (a stalled leader's and its successor's) lock them in the same order.
        rows.sort()
        mark = self.db.mark
        low, high = ("LEAST", "GREATEST") if self._postgres else ("min", "max")
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

    def add_caps(self, conn: Connection, caps: Sequence[NodeCap]) -> None:
        """Nodes seen at GKE's line cap (in the caller's transaction): an hour keeps its highest peak."""
        if not caps:
            return
        mark = self.db.mark
        high = "GREATEST" if self._postgres else "max"
        statement = (
            f"INSERT INTO node_caps (hour, cluster, node, peak) VALUES ({mark}, {mark}, {mark}, {mark}) "
            f"ON CONFLICT (hour, cluster, node) DO UPDATE SET peak = {high}(node_caps.peak, excluded.peak)"
        )
        conn.exec_driver_sql(statement, [tuple(cap) for cap in caps])

    def node_caps(self, first_hour: int, end_hour: int) -> list[NodeCap]:
        """Nodes seen at the cap in [first_hour, end_hour), oldest hour first."""
        query = (
            sa.select(node_caps.c.hour, node_caps.c.cluster, node_caps.c.node, node_caps.c.peak)
            .where(node_caps.c.hour >= first_hour, node_caps.c.hour < end_hour)
            .order_by(node_caps.c.hour, node_caps.c.cluster, node_caps.c.node)
        )
        with self.db.connect() as conn:
            return [NodeCap(int(h), c, n, int(p)) for h, c, n, p in conn.execute(query)]

    def flow_hours(self, first_hour: int, end_hour: int) -> list[FlowHour]:
        """Each flow's denies per hour in [first_hour, end_hour), all nodes together (the digest's
        hours: read from the hourly rows, which are kept for the whole retention)."""
        table = flow_history
        group = [table.c.hour, *(table.c[name] for name in _FLOW)]
        query = (
            sa.select(*group, *self._sums(table))
            .where(table.c.hour >= first_hour, table.c.hour < end_hour)
            .group_by(*group)
        )
        with self.db.connect() as conn:
            return [_flow_hour(row) for row in conn.execute(query)]

    def flow_sums(self, window: Window) -> list[FlowHour]:
        """Each flow's denies over the window's hours, all nodes together; `hour` is the window's
        first. Closed whole days are read from the daily rows."""
        with self.db.connect() as conn:
            rows = self._rows(conn, FlowFilter(), window, (*_FLOW, *_VALUES))
            group = [rows.c[name] for name in _FLOW]
            query = sa.select(sa.literal(window.first_hour), *group, *self._sums(rows)).group_by(*group)
            return [_flow_hour(row) for row in conn.execute(query)]

    def seen_before(self, before: datetime, namespaces: Sequence[str]) -> set[Identity]:
        """The flows policed in `namespaces` that the history holds from before `before` (what
        makes a digest's flow not new). Narrowed by namespace, which the tables index."""
        seen: set[Identity] = set()
        window = Window(from_micros(0), before)
        wanted = sorted(set(namespaces))
        with self.db.connect() as conn:
            ranges = [
                (table, bucket, low, min(high, hour_of(before) - 1))
                for table, bucket, low, high in self._ranges(conn, window)
            ]
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for table, bucket, low, high in ranges:
                    if high < low:
                        continue
                    query = (
                        sa.select(*(table.c[name] for name in _FLOW))
                        .where(table.c.namespace.in_(chunk), table.c[bucket] >= low, table.c[bucket] <= high)
                        .distinct()
                    )
                    seen.update(
                        (row[0], row[1], row[2], row[3], int(row[4]), row[5]) for row in conn.execute(query)
                    )
        return seen

    @staticmethod
    def _sums(rows: Any) -> list[Any]:
        return [
            sa.func.max(rows.c.namespace),
            sa.func.sum(rows.c.attempts),
            sa.func.sum(rows.c.entries),
            sa.func.sum(sa.case((rows.c.muted, rows.c.attempts), else_=0)),
            sa.func.min(rows.c.first_seen),
            sa.func.max(rows.c.last_seen),
        ]

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
        """The window's whole UTC days that are closed (summed) from the daily table and its other
        hours from the hourly one; all hours when it holds no closed whole day."""
        first, last = window.first_hour, window.last_hour
        hourly: list[_Range] = [(flow_history, "hour", first, last)]
        open_day = _open_day(conn)
        if open_day is None:
            return hourly
        start, end = -(-first // _DAY) * _DAY, min((last + 3600) // _DAY * _DAY, open_day)  # [start, end)
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
        conn.execute(node_caps.delete().where(node_caps.c.hour < hour))
        return int(conn.execute(flow_history.delete().where(flow_history.c.hour < hour)).rowcount)


def _flow_hour(row: Any) -> FlowHour:
    return FlowHour(
        int(row[0]),
        row[1],
        row[2],
        row[3],
        row[4],
        int(row[5]),
        row[6],
        row[7],
        int(row[8]),
        int(row[9]),
        int(row[10]),
        from_micros(int(row[11])),
        from_micros(int(row[12])),
    )


def _open_day(conn: Connection) -> int | None:
    """The first day not yet summed into the daily table; None before the history holds any."""
    value = conn.execute(sa.select(cursors.c.position).where(cursors.c.name == DAILY_OPEN)).scalar()
    return None if value is None else int(value)


def _set_open_day(conn: Connection, day: int, new: bool) -> None:
    if new:
        conn.execute(cursors.insert().values(name=DAILY_OPEN, position=day))
    else:
        conn.execute(cursors.update().where(cursors.c.name == DAILY_OPEN).values(position=day))


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
