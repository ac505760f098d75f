"""The flow history table (`bot.adapters.store.history`) on the embedded SQLite and on the real
PostgreSQL, with explicit times. Every test taking `store` runs once per backend with the same
expected values; one test runs the same events through both and compares every answer.

- `HistoryStore.add`: adding a cell again sums attempts and entries and widens first/last seen;
  a rolled-back transaction adds nothing;
- `flow_nodes`: every filter, source/destination globs case-sensitive on both databases, with
  `_`, `%` and `\\` in values taken literally; window hours inclusive of the first and last hour
  read, exclusive of an end exactly on an hour; equal to the in-memory `flow_nodes` of the cells;
- when the history starts (`history_started`), and `purge` dropping only the hours before the one
  its cutoff falls in;
- end to end through `store_messages` and `GroupingWorker`: events across an hour edge land in two
  hours; the partly filled current hour is answered; a worker whose commit fails (its lease lost,
  or the store failing at the history's INSERT) leaves nothing behind, and the worker that resumes
  never counts an event twice; muted events are counted, marked muted, and alert nobody;
- `Store.purge(now, 7d, 90d)`: old raw events go, the history stays; history past 90 days goes
  hour by hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store import Fence, LeaseLost, Store
from bot.adapters.store.tables import flow_history
from bot.core.events import NetworkNames, RawMessage
from bot.core.grouping import Grouper, GroupingPolicy
from bot.core.history import (
    Cell,
    CellKey,
    FlowFilter,
    FlowNode,
    Window,
    flow_nodes,
    hour_of,
    hour_start,
    recent,
    top,
)
from bot.core.mutes import Mute, matchers_of_group
from bot.core.routing import Route, RoutingTable
from bot.pipeline import GROUPING_CURSOR, GroupingWorker, entry_parser, store_messages
from tests.logentries import raw_message
from tests.store_queries import event_count, total_attempts

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)  # on an hour
#: A commit time after the days of the cells the tests add (most of them): those days are closed.
LATER = T0 + timedelta(days=30)
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
H8 = hour_of(T0)
POLICY = GroupingPolicy(group_wait=timedelta(seconds=30), group_interval=timedelta(minutes=1))
ROUTING = RoutingTable((Route((("namespace", "payments"),), "#payments"),), "#netlog")
PARSER = entry_parser(NetworkNames())
PAYMENTS = ("prod", "ingress", "checkout/web", "payments/api", 443, "tcp")


def at(minutes: float, *, hours: int = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes)


def message(moment: datetime, count: int = 1, namespace: str = "payments", node: str = "n1") -> RawMessage:
    """A deny at `moment` from checkout/web to `namespace`/api:443/tcp through `node`, cluster prod."""
    return raw_message(at=moment, count=count, namespace=namespace, node=node, project=None)


def worker(store: Store, fence: Fence | None = None) -> GroupingWorker:
    return GroupingWorker(store, Grouper(POLICY, ROUTING), batch_size=7, fence=fence)


def key(
    hour: int = H8,
    *,
    source: str = "checkout/web",
    destination: str = "payments/api",
    port: int = 443,
    protocol: str = "tcp",
    direction: str = "ingress",
    node: str = "n1",
    cluster: str = "prod",
    muted: bool = False,
) -> CellKey:
    return CellKey(hour, cluster, direction, source, destination, port, protocol, node, muted)


def add(store: Store, cells: dict[CellKey, Cell]) -> None:
    with store.db.begin() as conn:
        store.history.add(conn, cells, LATER)


def rows(store: Store) -> list[tuple[Any, ...]]:
    """The table as it stands: (hour start, source, destination, node, muted, attempts, entries)."""
    c = flow_history.c
    query = sa.select(c.hour, c.source, c.destination, c.node, c.muted, c.attempts, c.entries)
    with store.db.connect() as conn:
        found = [(hour_start(row[0]), *row[1:4], bool(row[4]), *row[5:]) for row in conn.execute(query)]
    return sorted(found)


def answer(store: Store, window: Window, flow_filter: FlowFilter | None = None) -> list[FlowNode]:
    return sorted(store.history.flow_nodes(flow_filter or FlowFilter(), window))


def whole_day() -> Window:
    return Window(T0 - DAY, T0 + DAY)


@contextmanager
def failing_history_insert(store: Store) -> Iterator[None]:
    """While active, the INSERT into flow_history raises, as a dropped connection would: after the
    cursor and the groups were written in the same transaction."""

    def listener(
        conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO FLOW_HISTORY "):
            raise ConnectionError("injected failure before inserting into flow_history")

    sa.event.listen(store.db.engine, "before_cursor_execute", listener)
    try:
        yield
    finally:
        sa.event.remove(store.db.engine, "before_cursor_execute", listener)


# -- add ---------------------------------------------------------------------------------------


def test_adding_a_cell_again_sums_and_widens_it(store: Store) -> None:
    first, later = at(10) + 7 * US, at(50) + 123_456 * US
    add(store, {key(): Cell("payments", 3, 2, at(20), at(30))})
    add(
        store,
        {key(): Cell("payments", 4, 1, first, at(25)), key(node="n2"): Cell("payments", 1, 1, at(5), at(5))},
    )
    add(store, {key(): Cell("payments", 5, 3, at(40), later)})
    add(store, {})

    assert answer(store, whole_day()) == [
        FlowNode(*PAYMENTS, "n1", "payments", 12, 6, first, later, 0),
        FlowNode(*PAYMENTS, "n2", "payments", 1, 1, at(5), at(5), 0),
    ]
    assert rows(store) == [
        (T0, "checkout/web", "payments/api", "n1", False, 12, 6),
        (T0, "checkout/web", "payments/api", "n2", False, 1, 1),
    ]


def test_a_rolled_back_transaction_adds_nothing(store: Store) -> None:
    def add_then_fail() -> None:
        with store.db.begin() as conn:
            store.history.add(conn, {key(): Cell("payments", 3, 2, at(20), at(30))}, LATER)
            raise ConnectionError("the database went away before the commit")

    with pytest.raises(ConnectionError):
        add_then_fail()
    assert rows(store) == []


def test_big_counts_and_far_times_read_back_exactly(store: Store) -> None:
    """Attempts are BIGINT (a storm's sum passes 2**31) and times microseconds since the epoch."""
    first, last = (
        datetime(2038, 1, 19, 3, 14, 8, 1, tzinfo=UTC),
        datetime(2038, 1, 19, 3, 59, 59, 999_999, tzinfo=UTC),
    )
    huge = 2**31 - 1
    add(store, {key(hour_of(first)): Cell("payments", huge, huge, first, last)})
    add(store, {key(hour_of(first)): Cell("payments", huge, 1, last, last)})
    [row] = answer(store, Window(hour_start(hour_of(first)), last + US))
    assert (row.attempts, row.entries, row.first_seen, row.last_seen) == (2 * huge, huge + 1, first, last)


# -- flow_nodes: filters and windows -----------------------------------------------------------

#: Flows named by a letter: (source, destination, direction, port, protocol, node, cluster, namespace).
FLOWS = {
    "a": ("checkout/web", "payments/api", "ingress", 443, "tcp", "n1", "prod", "payments"),
    "b": ("checkout/web", "payments/api", "ingress", 443, "tcp", "n2", "prod", "payments"),
    "c": ("jobs/etl", "corp_vpn", "egress", 53, "udp", "n1", "prod", "jobs"),
    "d": ("jobs/etl", "corpxvpn", "egress", 53, "udp", "n1", "prod", "jobs"),
    "e": ("jobs/etl", "50%-pool", "egress", 0, "icmp", "n1", "prod", "jobs"),
    "f": ("jobs/etl", "5000-pool", "egress", 0, "icmp", "n1", "prod", "jobs"),
    "g": ("10.0.0.7", "billing/api", "ingress", 8080, "tcp", "", "staging", "billing"),
    "h": ("Office-VPN", "billing/api", "ingress", 8080, "tcp", "n1", "staging", "billing"),
    "i": ("jobs/etl", "smb\\share", "egress", 445, "tcp", "n1", "prod", "jobs"),
}


def flow_cells() -> dict[CellKey, Cell]:
    """Each flow once in hour 08 and twice (one muted) in hour 09; attempts tell them apart."""
    cells = {}
    for n, (name, (source, destination, direction, port, protocol, node, cluster, namespace)) in enumerate(
        FLOWS.items()
    ):
        for hour, muted, attempts in ((H8, False, 1), (H8 + 3600, False, 10), (H8 + 3600, True, 100)):
            seen = hour_start(hour) + timedelta(minutes=n)
            cell_key = CellKey(hour, cluster, direction, source, destination, port, protocol, node, muted)
            cells[cell_key] = Cell(
                namespace, attempts * (n + 1), 1, seen, seen + timedelta(seconds=ord(name))
            )
    return cells


@pytest.mark.parametrize(
    ("flow_filter", "names"),
    [
        (FlowFilter(), "abcdefghi"),
        (FlowFilter(cluster="staging"), "gh"),
        (FlowFilter(cluster="Staging"), ""),
        (FlowFilter(namespace="jobs"), "cdefi"),
        (FlowFilter(namespace="job*"), ""),  # namespace is exact
        (FlowFilter(port=53), "cd"),
        (FlowFilter(port=0), "ef"),
        (FlowFilter(protocol="icmp"), "ef"),
        (FlowFilter(src="checkout/*"), "ab"),
        (FlowFilter(src="*/web"), "ab"),
        (FlowFilter(src="checkout/we?"), "ab"),
        (FlowFilter(src="10.0.0.?"), "g"),
        (FlowFilter(src="Office-*"), "h"),
        (FlowFilter(src="office-*"), ""),  # case-sensitive (SQLite's LIKE is not)
        (FlowFilter(src="OFFICE-VPN"), ""),
        (FlowFilter(dst="payments/API"), ""),
        (FlowFilter(dst="corp_vpn"), "c"),  # `_` is a character, not LIKE's wildcard
        (FlowFilter(dst="corp?vpn"), "cd"),
        (FlowFilter(dst="50%*"), "e"),  # `%` too
        (FlowFilter(dst="50%-pool"), "e"),
        (FlowFilter(dst="*pool"), "ef"),
        (FlowFilter(dst="smb\\share"), "i"),  # and `\`, LIKE's escape character here
        (FlowFilter(dst="smb\\*"), "i"),
        (FlowFilter(dst="*"), "abcdefghi"),
        (FlowFilter(dst="?"), ""),
        (FlowFilter("prod", "jobs", "jobs/*", "corp*", 53, "udp"), "cd"),
        (FlowFilter("prod", "jobs", "jobs/*", "corp*", 53, "tcp"), ""),
    ],
)
def test_flow_nodes_filters(store: Store, flow_filter: FlowFilter, names: str) -> None:
    cells = flow_cells()
    add(store, cells)
    window = whole_day()
    found = answer(store, window, flow_filter)
    expected = sorted(FLOWS[name] for name in names)
    assert (
        sorted(
            (r.source, r.destination, r.direction, r.dest_port, r.protocol, r.node, r.cluster, r.namespace)
            for r in found
        )
        == expected
    )
    assert found == sorted(flow_nodes(cells, flow_filter, window))  # what a Cloud Logging answer gives


def test_flow_nodes_sums_hours_and_keeps_muted_attempts_apart(store: Store) -> None:
    add(store, flow_cells())
    [row] = answer(store, Window(T0, at(0, hours=2)), FlowFilter(dst="corp_vpn"))
    assert (row.attempts, row.entries, row.muted_attempts) == (3 + 30 + 300, 3, 300)
    assert (row.first_seen, row.last_seen) == (at(2), at(2, hours=1) + timedelta(seconds=ord("c")))


@pytest.mark.parametrize(
    ("window", "attempts"),
    [
        (Window(T0, at(0, hours=2)), 11),  # 08 and 09: 10:00 is the end, not read
        (Window(T0, at(0, hours=2) + US), 111),  # a microsecond into 10:00 reads it
        (Window(T0, at(0, hours=3)), 111),
        (Window(T0 + US, at(0, hours=1)), 1),  # the first hour is read whole, from its start
        (Window(at(59, hours=-1), at(0, hours=1)), 1),
        (Window.since(at(25, hours=2), HOUR), 110),  # at 10:25: 09:00-10:25, the current hour too
        (Window.since(at(25, hours=2), timedelta(minutes=15)), 100),
        (Window.since(at(0, hours=2), HOUR), 10),  # at 10:00: 09 alone
        (Window.since(at(59, hours=3), HOUR), 1100),  # at 11:59: 10:00-11:59
        (Window.since(at(0, hours=5), HOUR), 0),
        (Window(T0 - HOUR, T0), 0),
        (Window(T0, T0), 0),
        (whole_day(), 1111),
    ],
)
def test_flow_nodes_window_hours(store: Store, window: Window, attempts: int) -> None:
    # 08:30 -> 1 attempt, 09:30 -> 10, 10:30 -> 100, 11:30 -> 1000: the sum says which hours were read
    cells = {
        key(H8 + 3600 * n): Cell("payments", 10**n, 1, at(30, hours=n), at(30, hours=n)) for n in range(4)
    }
    add(store, cells)
    assert sum(row.attempts for row in answer(store, window)) == attempts
    assert answer(store, window) == sorted(flow_nodes(cells, FlowFilter(), window))


def test_the_history_starts_at_the_first_grouped_batch_and_stays_there(store: Store) -> None:
    """Its start is the first batch's earliest deny; later batches, even older denies, leave it."""
    assert store.grouping.history_started() is None
    store_messages(store, [message(at(30)), message(at(20))], PARSER, at(31))
    worker(store).catch_up(at(31))
    assert store.grouping.history_started() == at(20)
    store_messages(store, [message(at(5)), message(at(40))], PARSER, at(41))
    worker(store).catch_up(at(41))
    assert store.grouping.history_started() == at(20)
    assert store.purge(at(41), timedelta(days=7), timedelta(days=90))["events"] == 0


@pytest.mark.parametrize(
    ("cutoff", "kept"),
    [
        (T0 - US, [T0, at(0, hours=1), at(0, hours=2)]),
        (T0, [T0, at(0, hours=1), at(0, hours=2)]),  # the hour the cutoff falls in is kept
        (at(59), [T0, at(0, hours=1), at(0, hours=2)]),
        (at(0, hours=1), [at(0, hours=1), at(0, hours=2)]),
        (at(30, hours=2), [at(0, hours=2)]),
        (at(0, hours=3), []),
    ],
)
def test_purge_drops_the_hours_before_the_cutoffs(
    store: Store, cutoff: datetime, kept: list[datetime]
) -> None:
    add(
        store,
        {key(H8 + 3600 * n): Cell("payments", 1, 1, at(10, hours=n), at(10, hours=n)) for n in range(3)},
    )
    with store.db.begin() as conn:
        removed = store.history.purge(conn, cutoff)
    assert [row[0] for row in rows(store)] == kept
    assert removed == 3 - len(kept)


# -- end to end: ingest, grouping worker, answers ---------------------------------------------


def test_events_across_an_hour_edge_land_in_two_hours(store: Store) -> None:
    edge = at(0, hours=1)
    store_messages(
        store,
        [
            message(edge - US, count=2),
            message(edge, count=3),
            message(edge + US, count=4),
            message(edge - HOUR),
        ],
        PARSER,
        edge,
    )
    worker(store).catch_up(edge + timedelta(seconds=5))
    assert rows(store) == [
        (T0, "checkout/web", "payments/api", "n1", False, 3, 2),
        (edge, "checkout/web", "payments/api", "n1", False, 7, 2),
    ]
    [row] = answer(store, Window(T0, edge))
    assert (row.attempts, row.first_seen, row.last_seen) == (3, T0, edge - US)
    [row] = answer(store, Window(edge, edge + HOUR))
    assert (row.attempts, row.first_seen, row.last_seen) == (7, edge, edge + US)


def test_the_partly_filled_current_hour_is_answered(store: Store) -> None:
    now = at(25, hours=1)  # 09:25
    store_messages(
        store,
        [
            message(at(30), count=2),
            message(at(5, hours=1), count=3),
            message(at(20, hours=1), count=5, node="n2"),
        ],
        PARSER,
        now,
    )
    worker(store).catch_up(now)

    last_hour = Window.since(now, HOUR)  # 08:00-09:25
    assert [(r.node, r.attempts, r.first_seen, r.last_seen) for r in answer(store, last_hour)] == [
        ("n1", 5, at(30), at(5, hours=1)),
        ("n2", 5, at(20, hours=1), at(20, hours=1)),
    ]
    quarter = recent(answer(store, Window.since(now, timedelta(minutes=15))), limit=20)  # 09:00-09:25
    [flow] = quarter.flows
    assert (flow.attempts, flow.entries, flow.nodes, flow.last_seen) == (8, 2, ("n1", "n2"), at(20, hours=1))
    assert (quarter.flow_count, quarter.attempts) == (1, 8)


@pytest.mark.parametrize(
    ("failure", "resume"),
    [
        ("lease lost", "fresh worker"),  # a worker that lost its lease never commits again
        ("history insert fails", "fresh worker"),  # a restart
        ("history insert fails", "same worker"),  # the worker reloads from the store and retries
    ],
)
def test_a_failed_commit_mid_batch_never_counts_twice(store: Store, failure: str, resume: str) -> None:
    """10 denies across 08:59-09:00 in batches of 7: the first batch commits, the second fails and
    leaves nothing behind, then whoever resumes folds the rest exactly once."""
    edge = at(0, hours=1)
    stamps = [edge + timedelta(seconds=n - 5) for n in range(10)]  # 08:59:55 ... 09:00:04
    store_messages(store, [message(moment, count=n + 1) for n, moment in enumerate(stamps)], PARSER, edge)
    ttl = timedelta(seconds=15)
    store.leases.hold("alerts", "a", edge, ttl)
    first = worker(store, Fence("alerts", "a"))
    first.step(edge + timedelta(seconds=5))  # 7 events: 08:59:55-09:00:01
    committed = rows(store)
    assert committed == [
        (T0, "checkout/web", "payments/api", "n1", False, 1 + 2 + 3 + 4 + 5, 5),
        (edge, "checkout/web", "payments/api", "n1", False, 6 + 7, 2),
    ]
    position = store.grouping.cursor(GROUPING_CURSOR)

    if failure == "lease lost":
        with pytest.raises(LeaseLost):
            first.step(edge + timedelta(seconds=30))  # stalled past its lease
        fence = Fence("alerts", "b")  # another replica takes over
    else:
        with failing_history_insert(store), pytest.raises(ConnectionError):
            first.step(edge + timedelta(seconds=10))
        fence = Fence("alerts", "a")
    store.leases.hold("alerts", fence.holder, edge + timedelta(seconds=30), ttl)
    assert rows(store) == committed  # the failed step wrote nothing...
    assert store.grouping.cursor(GROUPING_CURSOR) == position  # ...not even its cursor

    resumed = worker(store, fence) if resume == "fresh worker" else first
    resumed.catch_up(edge + timedelta(seconds=31))
    resumed.catch_up(edge + timedelta(seconds=32))  # nothing new: nothing added
    assert rows(store) == [
        (T0, "checkout/web", "payments/api", "n1", False, 15, 5),
        (edge, "checkout/web", "payments/api", "n1", False, 6 + 7 + 8 + 9 + 10, 5),
    ]
    assert sum(row.attempts for row in answer(store, whole_day())) == total_attempts(store) == 55


def test_a_restarted_worker_adds_nothing_for_events_already_folded(store: Store) -> None:
    store_messages(store, [message(at(n), count=2) for n in range(5)], PARSER, at(5))
    worker(store).catch_up(at(5))
    worker(store).catch_up(at(6))  # a restart with nothing new
    assert rows(store) == [(T0, "checkout/web", "payments/api", "n1", False, 10, 5)]


def test_muted_events_are_counted_marked_and_alert_nobody(store: Store) -> None:
    store.mutes.add(Mute(0, (("namespace", "pay*"),), T0, at(30), "U0OP", "known"))
    store_messages(
        store,
        [message(at(10), count=4) for _ in range(3)] + [message(at(10), namespace="web")],
        PARSER,
        at(10),
    )
    grouping = worker(store)
    grouping.catch_up(at(10))
    notes = grouping.step(at(10) + timedelta(seconds=45))
    assert [(n.channel, n.total) for n in notes] == [("#netlog", 1)]  # payments was muted

    store_messages(store, [message(at(40), count=5)], PARSER, at(40))  # the mute has expired
    grouping.catch_up(at(40))
    [opened] = grouping.step(at(41))
    assert (opened.channel, opened.total) == ("#payments", 5)

    assert rows(store) == [
        (T0, "checkout/web", "payments/api", "n1", False, 5, 1),
        (T0, "checkout/web", "payments/api", "n1", True, 12, 3),
        (T0, "checkout/web", "web/api", "n1", False, 1, 1),
    ]
    payments, web = answer(store, Window.since(at(45), HOUR))
    assert (payments.destination, payments.attempts, payments.entries, payments.muted_attempts) == (
        "payments/api",
        17,
        4,
        12,
    )
    assert (payments.first_seen, payments.last_seen) == (at(10), at(40))
    assert (web.destination, web.attempts, web.muted_attempts) == ("web/api", 1, 0)
    assert recent([payments, web], limit=20).muted_attempts == 12


def test_a_mute_buttons_group_is_marked_muted_in_the_history_too(store: Store) -> None:
    """The Mute 1 h button mutes one group (its key); its denies still count, marked muted."""
    store_messages(store, [message(at(10), count=2)], PARSER, at(10))
    grouping = worker(store)
    grouping.catch_up(at(10))
    [group] = grouping.grouper.groups.values()
    matchers = matchers_of_group(group.labels)
    store.mutes.add(Mute(0, matchers, at(11), at(60), "U0OP", "button", group_key=group.key))
    store_messages(store, [message(at(12), count=3), message(at(12), namespace="web")], PARSER, at(12))
    grouping.catch_up(at(12))
    assert rows(store) == [
        (T0, "checkout/web", "payments/api", "n1", False, 2, 1),
        (T0, "checkout/web", "payments/api", "n1", True, 3, 1),
        (T0, "checkout/web", "web/api", "n1", False, 1, 1),
    ]


# -- retention ---------------------------------------------------------------------------------


def test_purging_raw_events_leaves_the_history(store: Store) -> None:
    store_messages(
        store, [message(at(10), count=3), message(at(10, hours=2), count=4)], PARSER, at(11, hours=2)
    )
    worker(store).catch_up(at(11, hours=2))
    before = answer(store, whole_day())

    removed = store.purge(T0 + 8 * DAY, timedelta(days=7), timedelta(days=90))
    assert (removed["events"], removed["flow_history"]) == (2, 0)
    assert event_count(store) == 0
    assert answer(store, whole_day()) == before
    assert rows(store)[0][0] == T0  # the hours are still there

    store.purge(T0 + 200 * DAY, timedelta(days=7))  # no history retention given: the history is kept
    assert answer(store, whole_day()) == before


@pytest.mark.parametrize(
    ("now", "kept", "attempts"),
    [
        (T0 + 90 * DAY, [8, 10], 7),
        (T0 + 90 * DAY + HOUR - US, [8, 10], 7),  # the cutoff falls in 08:00: kept
        (T0 + 90 * DAY + HOUR, [10], 4),  # 08:00 is past 90 days; 10:00 is not
        (T0 + 90 * DAY + 3 * HOUR - US, [10], 4),
        (T0 + 90 * DAY + 3 * HOUR, [], 0),
    ],
)
def test_history_past_its_retention_goes_hour_by_hour(
    store: Store, now: datetime, kept: list[int], attempts: int
) -> None:
    store_messages(
        store, [message(at(10), count=3), message(at(10, hours=2), count=4)], PARSER, at(11, hours=2)
    )
    worker(store).catch_up(at(11, hours=2))

    removed = store.purge(now, timedelta(days=7), timedelta(days=90))
    assert removed["flow_history"] == 2 - len(kept)
    assert [row[0].hour for row in rows(store)] == kept
    assert sum(row.attempts for row in answer(store, whole_day())) == attempts
    assert event_count(store) == 0  # the raw events went at 7 days


# -- one history, two databases ----------------------------------------------------------------


def test_sqlite_and_postgresql_give_identical_answers(tmp_path: Path, pg_schema_url: str) -> None:
    """The same events through ingest and grouping, on both databases: the same table, the same
    answers for every filter, `recent` and `top`, tied flows included."""
    stamps = [at(59) + timedelta(seconds=s) for s in (0, 30, 59, 60, 90)]
    messages = [
        message(moment, count=n + 1, namespace=namespace, node=node)
        for n, moment in enumerate(stamps)
        for namespace, node in (("payments", "n1"), ("billing", "n1"), ("payments", "n2"), ("web", "n3"))
    ]
    tied = [message(at(5, hours=1), count=2, namespace=ns) for ns in ("zeta", "alpha", "mid")]
    stores = [Store(f"sqlite:///{tmp_path / 'netlog.db'}"), Store(pg_schema_url)]
    try:
        for store in stores:
            store.migrate()
            store.mutes.add(Mute(0, (("namespace", "billing"),), T0, at(59) + timedelta(seconds=45), "U1"))
            for chunk in (messages[:7], messages[7:], tied):
                store_messages(store, chunk, PARSER, at(2, hours=1))
                worker(store).catch_up(at(59) + timedelta(seconds=40))
        sqlite, postgresql = stores
        assert rows(sqlite) == rows(postgresql)
        now = at(10, hours=1)
        for flow_filter in (
            FlowFilter(),
            FlowFilter(namespace="billing"),
            FlowFilter(dst="*/api"),
            FlowFilter(src="x*"),
        ):
            for window in (Window.since(now, HOUR), Window.since(now, timedelta(minutes=5)), whole_day()):
                answers = [answer(store, window, flow_filter) for store in stores]
                assert answers[0] == answers[1]
                got = [store.history.flow_nodes(flow_filter, window) for store in stores]
                assert recent(got[0], limit=3) == recent(got[1], limit=3)
                assert top(got[0], [], "namespace", 3) == top(got[1], [], "namespace", 3)
        assert sum(r.muted_attempts for r in answer(sqlite, whole_day())) > 0
        assert [
            f.destination for f in recent(sqlite.history.flow_nodes(FlowFilter(), whole_day()), 3).flows
        ] == [
            "alpha/api",
            "mid/api",
            "zeta/api",
        ]
    finally:
        for store in stores:
            store.close()


def test_group_headers_are_the_groups_without_their_flows(store: Store) -> None:
    """What status and the Home tab read: every group's header, none of its tracked flows."""
    store_messages(store, [message(at(10), count=2), message(at(11), namespace="web")], PARSER, at(12))
    worker(store).catch_up(at(12))
    loaded, headers = store.grouping.load(), store.grouping.headers()
    assert sorted(g.key for g in headers) == sorted(g.key for g in loaded)
    assert sorted(g.total for g in headers) == [1, 2]
    assert all(g.flows for g in loaded)
    assert not any(g.flows for g in headers)
