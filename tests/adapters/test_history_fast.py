"""The flow history's fast reads (`bot.adapters.store.history`) on SQLite and PostgreSQL, with
explicit times: the daily table (`flow_history_daily`) and `HistoryStore.sums`.

- a UTC day is summed into the daily table once, by the first `add` (directly or through the
  grouping's commit) after it is over; cells of a day already summed go to it directly, cells
  of one day merged first, again and again additively; open days stay out of it;
- `sums` equals `sum_by(flow_nodes(...))` for every `top` key, under every filter;
- windows spanning days, with partial hours at either edge, read whole days from the daily table
  and give exactly the in-memory answer of the cells (`bot.core.history.flow_nodes`); windows
  holding no whole day read the hours alone;
- `purge` drops the hours before its cutoff and the days all of whose hours went; a window reaching
  into a partly purged day still gets exactly what the hours hold;
- whether no day, some days or every day is closed, answers are the same;
- revision 0010 marks every day 0009 summed as closed (and its downgrade sums the open ones);
  revision 0009's downgrade drops both tables and its upgrade brings them back, working.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store import Store
from bot.adapters.store.tables import flow_history_daily
from bot.core.history import (
    TOP_BY,
    Cell,
    CellKey,
    FlowFilter,
    TopBy,
    Window,
    flow_nodes,
    hour_of,
    hour_start,
    sum_by,
)
from tests.adapters.store_support import CURSOR, downgrade

DAY0 = datetime(2026, 4, 1, tzinfo=UTC)  # a UTC midnight
D0 = hour_of(DAY0)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)
#: A commit time after every generated cell's day: each `add` closes them all.
LATER = DAY0 + 10 * DAY

#: (cluster, direction, source, destination, port, protocol, namespace)
FLOWS = [
    ("prod", "ingress", "checkout/web", "payments/api", 443, "tcp", "payments"),
    ("prod", "ingress", "10.0.0.7", "payments/api", 443, "tcp", "payments"),
    ("prod", "egress", "jobs/etl", "corp_vpn", 53, "udp", "jobs"),
    ("prod", "egress", "jobs/etl", "50%-pool", 0, "icmp", "jobs"),
    ("staging", "ingress", "Office-VPN", "billing/api", 8080, "tcp", "billing"),
    ("staging", "egress", "node/gke-a", "metadata-server", 80, "tcp", ""),
]
NODES = ("n1", "n2", "", "n3")


def generated(days: int = 4, seed: int = 5) -> dict[CellKey, Cell]:
    """Cells over `days` UTC days from DAY0 - 5 h: some flows in some hours through some nodes,
    muted or not, with attempts that differ."""
    rng = random.Random(seed)
    cells: dict[CellKey, Cell] = {}
    for hour in range(D0 - 5 * 3600, D0 + days * 86_400, 3600):
        for cluster, direction, source, destination, port, protocol, namespace in FLOWS:
            for node in NODES:
                if rng.random() < 0.5:
                    continue
                muted = rng.random() < 0.15
                key = CellKey(hour, cluster, direction, source, destination, port, protocol, node, muted)
                first = hour_start(hour) + timedelta(seconds=rng.randrange(3600))
                last = first + timedelta(seconds=rng.randrange(3600 - first.minute * 60 - first.second))
                cells[key] = Cell(namespace, rng.randrange(1, 1000), rng.randrange(1, 50), first, last)
    return cells


def add_in_two(store: Store, cells: dict[CellKey, Cell], now: datetime = LATER) -> None:
    """Each cell added in two parts (its first and its last moment), as two grouping steps would."""
    early, late = {}, {}
    for key, cell in cells.items():
        attempts, entries = cell.attempts // 2, cell.entries // 2
        if not attempts or not entries:
            early[key] = cell
            continue
        early[key] = Cell(
            cell.namespace, cell.attempts - attempts, cell.entries - entries, cell.first_seen, cell.first_seen
        )
        late[key] = Cell(cell.namespace, attempts, entries, cell.last_seen, cell.last_seen)
    add(store, early, now)
    add(store, late, now)


def add(store: Store, cells: dict[CellKey, Cell], now: datetime = LATER) -> None:
    with store.db.begin() as conn:
        store.history.add(conn, cells, now)


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def capture(_c: Connection, _cu: Any, statement: str, _p: Any, _x: Any, _m: bool) -> None:
        seen.append(statement)

    sa.event.listen(store.db.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        sa.event.remove(store.db.engine, "before_cursor_execute", capture)


def daily_rows(store: Store) -> list[tuple[Any, ...]]:
    c = flow_history_daily.c
    query = sa.select(c.day, c.source, c.node, c.muted, c.namespace, c.attempts, c.entries, c.first_seen)
    with store.db.connect() as conn:
        return sorted((row[0], row[1], row[2], bool(row[3]), *row[4:]) for row in conn.execute(query))


#: Windows over the generated cells (DAY0 - 5 h to DAY0 + 4 d), edges anywhere.
WINDOWS = [
    Window(DAY0, DAY0 + DAY),  # exactly one day
    Window(DAY0, DAY0 + DAY - US),  # a microsecond short: 24 hours read all the same
    Window(DAY0 + HOUR, DAY0 + DAY + HOUR),  # 24 hours, no whole day
    Window(DAY0 - 3 * HOUR, DAY0 + 2 * DAY + 5 * HOUR + 30 * timedelta(minutes=1)),
    Window(DAY0 - 10 * HOUR, DAY0 + 4 * DAY),  # from before the first hour held
    Window(DAY0 + 7 * HOUR, DAY0 + 3 * DAY + 2 * US),  # ends a microsecond into an hour on a day
    Window(DAY0 + 23 * HOUR, DAY0 + 3 * DAY + HOUR),
    Window(DAY0 - 30 * DAY, DAY0 + 30 * DAY),
    Window.since(DAY0 + 3 * DAY + 8 * HOUR + 35 * timedelta(minutes=1), timedelta(days=2)),
    Window.since(DAY0 + 3 * DAY + 8 * HOUR + 35 * timedelta(minutes=1), timedelta(days=2)).previous(),
    Window(DAY0, DAY0),
]
FILTERS = [
    FlowFilter(),
    FlowFilter(cluster="staging"),
    FlowFilter(namespace="jobs"),
    FlowFilter(namespace=""),
    FlowFilter(port=0),
    FlowFilter(protocol="tcp"),
    FlowFilter(src="*/*"),
    FlowFilter(dst="corp_vpn"),
    FlowFilter(dst="50%*"),
    FlowFilter(src="office-*"),  # case-sensitive: nothing
    FlowFilter("prod", "payments", "*", "payments/*", 443, "tcp"),
]


@pytest.fixture(
    params=[DAY0 - 2 * DAY, DAY0 + 2 * DAY + 3 * HOUR, LATER],
    ids=["no day closed", "some closed", "all closed"],
)
def cells(store: Store, request: pytest.FixtureRequest) -> dict[CellKey, Cell]:
    """The generated cells, added in two steps at a time that has closed none, some or all of
    their days: the answers never depend on it."""
    cells = generated()
    add_in_two(store, cells, request.param)
    return cells


@pytest.fixture
def closed(store: Store) -> dict[CellKey, Cell]:
    """The generated cells, every day of them closed."""
    cells = generated()
    add_in_two(store, cells)
    return cells


# -- add ---------------------------------------------------------------------------------------


def test_add_sums_the_cells_of_each_day_into_its_row(store: Store) -> None:
    late = DAY0 + 23 * HOUR + 59 * timedelta(minutes=1)
    cell_key = CellKey(D0, "prod", "ingress", "checkout/web", "payments/api", 443, "tcp", "n1", False)
    add(
        store,
        {
            cell_key: Cell("payments", 3, 2, DAY0 + 10 * US, DAY0 + HOUR - US),
            cell_key._replace(hour=D0 + 23 * 3600): Cell("payments", 4, 1, late, late),
            cell_key._replace(hour=D0 + 86_400): Cell("payments", 5, 1, DAY0 + DAY, DAY0 + DAY),
            cell_key._replace(muted=True): Cell("payments", 7, 7, DAY0, DAY0),
        },
    )
    add(store, {cell_key._replace(hour=D0 + 5 * 3600): Cell("payments", 10, 3, DAY0 + 5 * HOUR, late)})
    micros = 1_000_000
    assert daily_rows(store) == [
        (D0, "checkout/web", "n1", False, "payments", 17, 6, D0 * micros + 10),
        (D0, "checkout/web", "n1", True, "payments", 7, 7, D0 * micros),
        (D0 + 86_400, "checkout/web", "n1", False, "payments", 5, 1, (D0 + 86_400) * micros),
    ]


def daily_attempts(store: Store) -> dict[int, int]:
    c = flow_history_daily.c
    with store.db.connect() as conn:
        return {
            int(day): int(n)
            for day, n in conn.execute(sa.select(c.day, sa.func.sum(c.attempts)).group_by(c.day))
        }


def attempts_per_day(cells: dict[CellKey, Cell], before: int) -> dict[int, int]:
    days: dict[int, int] = {}
    for key, cell in cells.items():
        day = key.hour - key.hour % 86_400
        if day < before:
            days[day] = days.get(day, 0) + cell.attempts
    return days


def test_the_grouping_commit_sums_each_day_once_it_is_over(store: Store) -> None:
    cells = generated(days=2)  # DAY0 - 5 h to DAY0 + 2 d
    everything = Window(DAY0 - 30 * DAY, DAY0 + 30 * DAY)

    store.grouping.commit(CURSOR, 1, [], [], [], DAY0 + 30 * timedelta(minutes=1), history=cells)
    assert daily_attempts(store) == attempts_per_day(cells, D0)  # the day before DAY0 only

    # Two days on, one more deny of DAY0 arrives late: DAY0 and the next day are over and summed,
    # the late deny with them; the day it is committed on stays open.
    late_key = CellKey(D0 + 3600, "prod", "ingress", "checkout/web", "payments/api", 443, "tcp", "n9", False)
    late = {late_key: Cell("payments", 4, 1, DAY0 + HOUR, DAY0 + HOUR)}
    store.grouping.commit(CURSOR, 2, [], [], [], DAY0 + 2 * DAY + HOUR, history=late)
    every = {**cells, **late}
    assert daily_attempts(store) == attempts_per_day(every, D0 + 2 * 86_400)

    # Later still, another late deny of DAY0 goes straight to its day, summed already.
    store.grouping.commit(CURSOR, 3, [], [], [], DAY0 + 2 * DAY + 2 * HOUR, history=late)
    every[late_key] = Cell("payments", 8, 2, DAY0 + HOUR, DAY0 + HOUR)
    assert daily_attempts(store) == attempts_per_day(every, D0 + 2 * 86_400)
    for window in (everything, *WINDOWS):
        assert sorted(store.history.flow_nodes(FlowFilter(), window)) == sorted(
            flow_nodes(every, FlowFilter(), window)
        )

    # The commit that ends the last day sums it too: then every day is in the daily table.
    store.grouping.commit(CURSOR, 4, [], [], [], LATER, history=late)
    every[late_key] = Cell("payments", 12, 3, DAY0 + HOUR, DAY0 + HOUR)
    assert daily_attempts(store) == attempts_per_day(every, hour_of(LATER))
    assert sum(daily_attempts(store).values()) == sum(cell.attempts for cell in every.values())


def test_close_days_sums_the_days_before_now_once_and_says_how_many(store: Store) -> None:
    with store.db.begin() as conn:
        assert store.history.close_days(conn, LATER) == 0  # nothing held: nothing to close, no mark
    cells = generated(days=2)  # DAY0 - 5 h to DAY0 + 2 d
    add(store, cells, DAY0 - 2 * DAY)  # before every cell: no day closed
    assert daily_attempts(store) == {}
    with store.db.begin() as conn:
        # From the day of the first add (DAY0 - 2 d, empty) to the one before DAY0 + 2 d.
        assert store.history.close_days(conn, DAY0 + 2 * DAY + HOUR) == 4
        assert store.history.close_days(conn, DAY0 + 2 * DAY + 2 * HOUR) == 0
    assert daily_attempts(store) == attempts_per_day(cells, D0 + 2 * 86_400)


# -- reads: the daily table for whole days, the hours at the edges -------------------------------


@pytest.mark.parametrize("window", WINDOWS)
def test_windows_across_days_give_exactly_the_hours_answer(
    store: Store, cells: dict[CellKey, Cell], window: Window
) -> None:
    for flow_filter in FILTERS:
        expected = sorted(flow_nodes(cells, flow_filter, window))
        assert sorted(store.history.flow_nodes(flow_filter, window)) == expected, flow_filter
        for by in TOP_BY:
            assert store.history.sums(flow_filter, window, by) == sum_by(expected, by), (flow_filter, by)


@pytest.mark.parametrize("by", TOP_BY)
@pytest.mark.parametrize("flow_filter", FILTERS)
def test_sums_equal_sum_by_of_flow_nodes(
    store: Store, cells: dict[CellKey, Cell], by: TopBy, flow_filter: FlowFilter
) -> None:
    for window in (WINDOWS[0], WINDOWS[2], WINDOWS[3]):
        got = store.history.sums(flow_filter, window, by)
        assert got == sum_by(store.history.flow_nodes(flow_filter, window), by)
        assert all(attempts > 0 for attempts in got.values())
    assert store.history.sums(flow_filter, Window(DAY0 - 30 * DAY, DAY0 - 29 * DAY), by) == {}


@pytest.mark.parametrize(
    ("window", "daily"),
    [
        (Window(DAY0, DAY0 + DAY), True),
        (Window(DAY0 - HOUR, DAY0 + DAY + HOUR), True),
        (Window(DAY0 + HOUR, DAY0 + DAY + HOUR), False),  # 24 hours, no whole day
        (Window(DAY0, DAY0 + DAY - HOUR), False),
        (Window(DAY0 - 30 * DAY, DAY0 - 28 * DAY), False),  # whole days, all before the history
    ],
)
@pytest.mark.usefixtures("closed")
def test_only_windows_holding_a_whole_day_read_the_daily_table(
    store: Store, window: Window, daily: bool
) -> None:
    with statements(store) as seen:
        store.history.flow_nodes(FlowFilter(), window)
        store.history.sums(FlowFilter(), window, "namespace")
    assert any("flow_history_daily" in statement for statement in seen) == daily


# -- retention ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cutoff", "days_kept"),
    [
        (DAY0 - HOUR, [D0 - 86_400, D0, D0 + 86_400, D0 + 2 * 86_400, D0 + 3 * 86_400]),
        (DAY0, [D0, D0 + 86_400, D0 + 2 * 86_400, D0 + 3 * 86_400]),  # the day before: all its hours went
        (DAY0 + US, [D0, D0 + 86_400, D0 + 2 * 86_400, D0 + 3 * 86_400]),
        (DAY0 + 13 * HOUR + 5 * US, [D0, D0 + 86_400, D0 + 2 * 86_400, D0 + 3 * 86_400]),  # partly: kept
        (DAY0 + DAY - US, [D0, D0 + 86_400, D0 + 2 * 86_400, D0 + 3 * 86_400]),
        (DAY0 + DAY, [D0 + 86_400, D0 + 2 * 86_400, D0 + 3 * 86_400]),
        (DAY0 + DAY + HOUR, [D0 + 86_400, D0 + 2 * 86_400, D0 + 3 * 86_400]),
        (DAY0 + 10 * DAY, []),
    ],
)
def test_purge_drops_the_hours_and_the_days_all_of_whose_hours_went(
    store: Store, closed: dict[CellKey, Cell], cutoff: datetime, days_kept: list[int]
) -> None:
    cells = closed
    with store.db.begin() as conn:
        removed = store.history.purge(conn, cutoff)
    assert removed == sum(1 for key in cells if key.hour < hour_of(cutoff))  # the hours' rows
    assert sorted({row[0] for row in daily_rows(store)}) == days_kept

    held = {key: cell for key, cell in cells.items() if key.hour >= hour_of(cutoff)}
    for window in (*WINDOWS, Window(cutoff - 2 * DAY, cutoff + 2 * DAY)):
        for flow_filter in (FlowFilter(), FlowFilter(namespace="jobs")):
            expected = sorted(flow_nodes(held, flow_filter, window))
            assert sorted(store.history.flow_nodes(flow_filter, window)) == expected
            assert store.history.sums(flow_filter, window, "flow") == sum_by(expected, "flow")


# -- the migration -----------------------------------------------------------------------------


def test_revision_0009_down_and_up_again_brings_both_tables_back(store: Store) -> None:
    add(store, generated(days=1))
    downgrade(store.db, "0008")
    assert {"flow_history", "flow_history_daily"}.isdisjoint(sa.inspect(store.db.engine).get_table_names())
    assert store.migrate() == "0011"
    assert store.history.flow_nodes(FlowFilter(), Window(DAY0 - DAY, DAY0 + 3 * DAY)) == []
    cells = generated(days=2, seed=9)
    add(store, cells)
    window = Window(DAY0 - DAY, DAY0 + 3 * DAY)
    assert sorted(store.history.flow_nodes(FlowFilter(), window)) == sorted(
        flow_nodes(cells, FlowFilter(), window)
    )


def test_revision_0010_counts_the_days_0009_summed_as_closed(store: Store) -> None:
    """0009 summed every day as it went, the current one too: after the upgrade those days are
    closed, and what comes later for them goes straight to them; going down sums the open days."""
    cells = generated(days=2)
    add(store, cells, DAY0 + DAY + HOUR)  # closes the day before DAY0 and DAY0; DAY0 + 1 d is open
    downgrade(store.db, "0009")  # sums the open days too, as 0009 kept them
    assert sum(daily_attempts(store).values()) == sum(cell.attempts for cell in cells.values())
    assert store.migrate() == "0011"
    with store.db.connect() as conn:
        mark = conn.execute(
            sa.text("SELECT position FROM cursors WHERE name = 'history_daily_open'")
        ).scalar()
    assert mark == D0 + 2 * 86_400  # the day after the latest one 0009 had summed

    more = generated(days=3, seed=9)
    add(store, more, DAY0 + 3 * DAY + HOUR)  # every cell's day is closed: each goes to both tables
    every = dict(cells)
    for key, cell in more.items():
        held = every.get(key)
        every[key] = (
            cell
            if held is None
            else Cell(
                held.namespace,
                held.attempts + cell.attempts,
                held.entries + cell.entries,
                min(held.first_seen, cell.first_seen),
                max(held.last_seen, cell.last_seen),
            )
        )
    assert daily_attempts(store) == attempts_per_day(every, D0 + 3 * 86_400)
    for window in (Window(DAY0 - 30 * DAY, DAY0 + 30 * DAY), *WINDOWS):
        assert sorted(store.history.flow_nodes(FlowFilter(), window)) == sorted(
            flow_nodes(every, FlowFilter(), window)
        ), window


def test_an_empty_history_upgrades_to_no_mark(store: Store) -> None:
    downgrade(store.db, "0009")
    assert store.migrate() == "0011"
    with store.db.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(*) FROM cursors WHERE name = 'history_daily_open'")).scalar()
            == 0
        )
