"""The flow history: denies rolled up per flow, node and hour, and the answers `recent` and `top`
give from it. Pure, with time passed in.

A *cell* is one flow (the grouping's identity: cluster, direction, source, destination, port,
protocol) seen through one node in one UTC hour, muted or not: its denied attempts (sum of
`count`), entries, first and last seen. The grouping worker writes the cells of each batch in the
transaction that advances its cursor, so the history is exact and never counts an event twice;
Cloud Logging answers go through the same `roll_up`, so both sources give the same shapes.

Windows are answered in whole hours: a window starts at the top of the hour its start falls in
(so "the last hour" at 10:25 reads 09:00-10:25) and always includes the current, partly filled
hour. Answers say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Literal, NamedTuple

from bot.core.events import PolicyEvent

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
#: Windows this long or longer are read in whole UTC days (see `Window.since`).
DAY_WINDOWS = timedelta(days=2)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TopBy = Literal["namespace", "flow", "source", "destination", "node", "port"]
TOP_BY: tuple[TopBy, ...] = ("namespace", "flow", "source", "destination", "node", "port")


class CellKey(NamedTuple):
    """What a history row is about. `dest_port` 0 and empty strings stand for "none", so the key
    is the same on SQLite and PostgreSQL (NULLs never collide in a unique key)."""

    hour: int  # the hour's start, seconds since the epoch (UTC)
    cluster: str
    direction: str
    source: str
    destination: str
    dest_port: int
    protocol: str
    node: str
    muted: bool


@dataclass(slots=True)
class Cell:
    #: The policed namespace (dest's for ingress, src's for egress): what `ns=` filters on.
    namespace: str
    attempts: int
    entries: int
    first_seen: datetime
    last_seen: datetime


def hour_of(moment: datetime) -> int:
    """The start of `moment`'s UTC hour, in seconds since the epoch."""
    seconds = int((moment - _EPOCH).total_seconds())
    return seconds - seconds % 3600


def hour_start(hour: int) -> datetime:
    return _EPOCH + timedelta(seconds=hour)


def roll_up(
    events: Iterable[PolicyEvent], muted: Callable[[PolicyEvent], bool] | None = None
) -> dict[CellKey, Cell]:
    """The cells of some events (denies only: allows are not what the history is about)."""
    cells = RollUp()
    cells.add(events, muted)
    return cells.cells()


class RollUp:
    """Cells gathered over several `add`s: a grouping step reads its events a part at a time and
    writes the cells of all of them once."""

    def __init__(self) -> None:
        # Plain tuples while folding, `CellKey`s once per cell: the grouping worker rolls up every
        # deny of a storm, and a NamedTuple costs a Python-level call to build.
        self._cells: dict[tuple[int, str, str, str, str, int, str, str, bool], Cell] = {}

    def add(self, events: Iterable[PolicyEvent], muted: Callable[[PolicyEvent], bool] | None = None) -> None:
        cells = self._cells
        # Events are nearly in time order: the hour is worked out again only when an event falls
        # outside the last one's (comparing datetimes costs less than converting each).
        hour, opens, closes = 0, _EPOCH, _EPOCH
        for event in events:
            if event.disposition != "deny":
                continue
            at = event.timestamp
            if not opens <= at < closes:
                hour = hour_of(at)
                opens = hour_start(hour)
                closes = opens + HOUR
            key = (
                hour,
                event.cluster or "",
                event.direction,
                event.src.label,
                event.dest.label,
                event.dest_port or 0,
                event.protocol,
                event.node or "",
                bool(muted and muted(event)),
            )
            cell = cells.get(key)
            if cell is None:
                cells[key] = Cell(event.namespace or "", event.count, 1, at, at)
                continue
            cell.attempts += event.count
            cell.entries += 1
            if at < cell.first_seen:
                cell.first_seen = at
            elif at > cell.last_seen:
                cell.last_seen = at

    def cells(self) -> dict[CellKey, Cell]:
        return {CellKey(*key): cell for key, cell in self._cells.items()}


#: GKE logs at most this many lines per second per node and drops the rest.
NODE_LINE_CAP = 500


class NodeCap(NamedTuple):
    """A node that logged `NODE_LINE_CAP` lines within one second of an hour: it hit GKE's cap,
    so lines past it were dropped. `peak` is the most lines seen in one second that hour."""

    hour: int
    cluster: str
    node: str
    peak: int


def capped_nodes(events: Sequence[PolicyEvent]) -> list[NodeCap]:
    """The nodes that hit GKE's per-node line cap in these events (denies and allows alike: the
    cap counts every line), counted per node and second by their timestamps."""
    if len(events) < NODE_LINE_CAP:
        return []  # too few to hold a capped second
    lines = LineCounts()
    lines.add(events)
    return lines.capped()


class LineCounts:
    """Lines per (cluster, node, second), gathered over several `add`s: a second whose lines are
    read in two parts of a grouping step is still counted whole."""

    def __init__(self) -> None:
        self._seconds: dict[tuple[str, str, int], int] = {}

    def add(self, events: Iterable[PolicyEvent]) -> None:
        seconds = self._seconds
        for event in events:
            at = (event.cluster or "", event.node or "", int(event.timestamp.timestamp()))
            seconds[at] = seconds.get(at, 0) + 1

    def capped(self) -> list[NodeCap]:
        peaks: dict[tuple[int, str, str], int] = {}
        for (cluster, node, second), lines in self._seconds.items():
            if lines >= NODE_LINE_CAP and node:
                key = (second - second % 3600, cluster, node)
                peaks[key] = max(peaks.get(key, 0), lines)
        return [NodeCap(hour, cluster, node, peak) for (hour, cluster, node), peak in sorted(peaks.items())]


@dataclass(frozen=True, slots=True)
class FlowFilter:
    """What `recent` and `top` are narrowed to. `src`/`dst` are globs (`*`, `?`) on the endpoint as
    alerts show it (`payments/api`, `node/gke-…`, `10.0.0.7`, `metadata-server`)."""

    cluster: str | None = None
    namespace: str | None = None
    src: str | None = None
    dst: str | None = None
    port: int | None = None
    protocol: str | None = None

    def matches(self, key: CellKey, namespace: str) -> bool:
        return (
            (self.cluster is None or key.cluster == self.cluster)
            and (self.namespace is None or namespace == self.namespace)
            and (self.src is None or fnmatchcase(key.source, self.src))
            and (self.dst is None or fnmatchcase(key.destination, self.dst))
            and (self.port is None or key.dest_port == self.port)
            and (self.protocol is None or key.protocol == self.protocol)
        )


@dataclass(frozen=True, slots=True)
class Window:
    """The buckets an answer reads: [start, end), `start` on a bucket's start (an hour, or a UTC
    day for windows of `DAY_WINDOWS` or more), `end` the moment asked."""

    start: datetime
    end: datetime
    unit: timedelta = HOUR

    @classmethod
    def since(cls, now: datetime, since: timedelta) -> Window:
        if since >= DAY_WINDOWS:
            # Long windows in whole UTC days: the store reads them from its daily rows, which are
            # a fraction of the hourly ones, and "7 days" reads as days anyway.
            start = hour_start(hour_of(now - since))
            return cls(start.replace(hour=0), now, DAY)
        return cls(hour_start(hour_of(now - since)), now)

    @property
    def hours(self) -> int:
        """Hour buckets read, the current partly filled one included."""
        return hour_of(self.end - timedelta(microseconds=1)) // 3600 - hour_of(self.start) // 3600 + 1

    @property
    def buckets(self) -> int:
        """`unit` buckets read, the current partly filled one included."""
        return -(-(self.end - self.start) // self.unit)

    @property
    def scale(self) -> float:
        """This window's length over its previous period's (whole buckets): what a previous count
        is multiplied by to compare like with like while the current bucket is still filling."""
        return (self.end - self.start) / (self.buckets * self.unit)

    def previous(self) -> Window:
        """The same number of whole buckets just before: what `top` compares with."""
        return Window(self.start - self.buckets * self.unit, self.start, self.unit)

    @property
    def first_hour(self) -> int:
        return hour_of(self.start)

    @property
    def last_hour(self) -> int:
        """The last bucket read (inclusive)."""
        return hour_of(self.end - timedelta(microseconds=1))


class FlowNode(NamedTuple):
    """One flow through one node over a window: what the store's query returns, per row."""

    cluster: str
    direction: str
    source: str
    destination: str
    dest_port: int
    protocol: str
    node: str
    namespace: str
    attempts: int
    entries: int
    first_seen: datetime
    last_seen: datetime
    muted_attempts: int


def flow_nodes(cells: Mapping[CellKey, Cell], flow_filter: FlowFilter, window: Window) -> list[FlowNode]:
    """`HistoryStore.flow_nodes` for cells in memory (a Cloud Logging answer)."""
    merged: dict[tuple[str, str, str, str, int, str, str, str], tuple[Cell, int]] = {}
    for key, cell in cells.items():
        if not window.first_hour <= key.hour <= window.last_hour:
            continue
        if not flow_filter.matches(key, cell.namespace):
            continue
        ident = (
            key.cluster,
            key.direction,
            key.source,
            key.destination,
            key.dest_port,
            key.protocol,
            key.node,
            cell.namespace,
        )
        muted = cell.attempts if key.muted else 0
        seen = merged.get(ident)
        if seen is None:
            merged[ident] = (
                Cell(cell.namespace, cell.attempts, cell.entries, cell.first_seen, cell.last_seen),
                muted,
            )
            continue
        total, muted_before = seen
        total.attempts += cell.attempts
        total.entries += cell.entries
        total.first_seen = min(total.first_seen, cell.first_seen)
        total.last_seen = max(total.last_seen, cell.last_seen)
        merged[ident] = (total, muted_before + muted)
    return [
        FlowNode(*ident, total.attempts, total.entries, total.first_seen, total.last_seen, muted)
        for ident, (total, muted) in merged.items()
    ]


@dataclass(frozen=True, slots=True)
class FlowTotal:
    """One flow over a window, all nodes together."""

    cluster: str
    direction: str
    source: str
    destination: str
    dest_port: int | None
    protocol: str
    namespace: str
    attempts: int
    entries: int
    first_seen: datetime
    last_seen: datetime
    nodes: tuple[str, ...]
    muted_attempts: int

    @property
    def port_label(self) -> str:
        return f"{self.dest_port}/{self.protocol}" if self.dest_port is not None else self.protocol


def flow_totals(rows: Iterable[FlowNode]) -> list[FlowTotal]:
    merged: dict[tuple[object, ...], list[FlowNode]] = {}
    for row in rows:
        merged.setdefault(row[:6], []).append(row)
    totals = []
    for parts in merged.values():
        first = parts[0]
        totals.append(
            FlowTotal(
                first.cluster,
                first.direction,
                first.source,
                first.destination,
                first.dest_port or None,
                first.protocol,
                first.namespace,
                sum(p.attempts for p in parts),
                sum(p.entries for p in parts),
                min(p.first_seen for p in parts),
                max(p.last_seen for p in parts),
                tuple(sorted({p.node for p in parts if p.node})),
                sum(p.muted_attempts for p in parts),
            )
        )
    return totals


@dataclass(frozen=True, slots=True)
class Recent:
    """`recent`: the latest denied flows, newest first, and the window's totals."""

    flows: tuple[FlowTotal, ...]
    more: int
    flow_count: int
    attempts: int
    entries: int
    muted_attempts: int


def recent(rows: Iterable[FlowNode], limit: int) -> Recent:
    totals = flow_totals(rows)
    # The store returns rows in whatever order its GROUP BY leaves them: ties (a storm's flows share
    # their last second) go by the flow, so one window gives one answer on SQLite and PostgreSQL.
    totals.sort(key=lambda f: (f.cluster, f.direction, f.source, f.destination, f.dest_port or 0, f.protocol))
    totals.sort(key=lambda f: (f.last_seen, f.attempts), reverse=True)  # stable: ties keep the flow order
    return Recent(
        tuple(totals[:limit]),
        max(len(totals) - limit, 0),
        len(totals),
        sum(f.attempts for f in totals),
        sum(f.entries for f in totals),
        sum(f.muted_attempts for f in totals),
    )


@dataclass(frozen=True, slots=True)
class TopRow:
    key: str
    attempts: int
    #: Attempts in the previous period; None when the key was absent then ("new").
    previous: int | None

    def share(self, total: int) -> float:
        return self.attempts / total if total else 0.0

    @property
    def change(self) -> float | None:
        """Relative change against the previous period (0.5 = +50%); None when new."""
        if not self.previous:
            return None
        return (self.attempts - self.previous) / self.previous


@dataclass(frozen=True, slots=True)
class Top:
    by: TopBy
    rows: tuple[TopRow, ...]
    more: int
    total: int
    previous_total: int


def top_key(row: FlowNode, by: TopBy) -> str:
    """The text a `top` row is about, as alerts show it."""
    return _key(
        by, row.namespace, row.source, row.destination, row.node, row.dest_port, row.protocol, row.direction
    )


#: The history columns each `top` key is made of: the store sums attempts grouped by exactly these.
TOP_COLUMNS: dict[TopBy, tuple[str, ...]] = {
    "namespace": ("namespace",),
    "source": ("source",),
    "destination": ("destination",),
    "node": ("node",),
    "port": ("dest_port", "protocol"),
    "flow": ("direction", "source", "destination", "dest_port", "protocol"),
}


def key_of(by: TopBy, values: Mapping[str, object]) -> str:
    """`top_key` from the values of `TOP_COLUMNS[by]` alone (a store's GROUP BY row)."""
    port = values.get("dest_port")
    return _key(
        by,
        str(values.get("namespace", "")),
        str(values.get("source", "")),
        str(values.get("destination", "")),
        str(values.get("node", "")),
        port if isinstance(port, int) else 0,
        str(values.get("protocol", "")),
        str(values.get("direction", "")),
    )


def _key(
    by: TopBy,
    namespace: str,
    source: str,
    destination: str,
    node: str,
    port: int,
    protocol: str,
    direction: str,
) -> str:
    if by == "namespace":
        return namespace or "(no namespace)"
    if by == "source":
        return source
    if by == "destination":
        return destination
    if by == "node":
        return node or "(no node)"
    port_label = f"{port}/{protocol}" if port else protocol
    if by == "port":
        return port_label
    return f"{source} → {destination}:{port_label} ({direction})"


def top(rows: Iterable[FlowNode], previous: Iterable[FlowNode], by: TopBy, limit: int) -> Top:
    return top_of(sum_by(rows, by), sum_by(previous, by), by, limit)


def top_of(
    now: Mapping[str, int], before: Mapping[str, int], by: TopBy, limit: int, scale: float = 1.0
) -> Top:
    """The `limit` biggest keys of `now`, each against its attempts in `before`. `scale` puts the
    previous period on the same footing when it is longer than the window (see `Window.scale`)."""
    before = {key: round(attempts * scale) for key, attempts in before.items()}
    ordered = sorted(now.items(), key=lambda item: (-item[1], item[0]))
    return Top(
        by,
        tuple(TopRow(key, attempts, before.get(key)) for key, attempts in ordered[:limit]),
        max(len(ordered) - limit, 0),
        sum(now.values()),
        sum(before.values()),
    )


def sum_by(rows: Iterable[FlowNode], by: TopBy) -> dict[str, int]:
    sums: dict[str, int] = {}
    for row in rows:
        key = top_key(row, by)
        sums[key] = sums.get(key, 0) + row.attempts
    return sums


def glob_to_like(pattern: str) -> str:
    """A `*`/`?` glob as a SQL LIKE pattern with `\\` as the escape character."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")
