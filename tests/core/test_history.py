"""The flow history's maths (`bot.core.history`), pure and table-driven with explicit times:

- `hour_of` at the edges of an hour (xx:59:59.999999 and xx:00:00) and for non-UTC offsets;
- `Window.since`: the start rounded down to its hour, the current partly filled hour always read,
  an end exactly on an hour not reading the hour it starts; `previous()` the same hours just before;
- `roll_up`: attempts (sum of `count`), entries, first and last seen per flow, node, hour and
  muted-or-not; allows ignored; no port -> 0, no node or cluster -> "";
- `FlowFilter.matches`: exact fields, case-sensitive `*`/`?` globs on source and destination;
- `flow_nodes` (in memory): hours merged within the window only, muted attempts kept apart;
- `flow_totals`, `recent` (newest first, limit and `more`, totals, a stable order for ties) and
  `top` (each `by`, shares, previous/new/change, ties by key, limit and `more`);
- `glob_to_like`: `%`, `_` and `\\` taken literally.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.core.events import Endpoint, PolicyEvent
from bot.core.history import (
    TOP_BY,
    Cell,
    CellKey,
    FlowFilter,
    FlowNode,
    TopBy,
    TopRow,
    Window,
    flow_nodes,
    flow_totals,
    glob_to_like,
    hour_of,
    hour_start,
    recent,
    roll_up,
    top,
)

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # on an hour
US = timedelta(microseconds=1)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
H10 = hour_of(T0)
_serial = iter(range(1_000_000))


def at(hh: int, mm: int = 0, ss: int = 0, us: int = 0) -> datetime:
    return T0.replace(hour=hh, minute=mm, second=ss, microsecond=us)


def deny(
    moment: datetime,
    *,
    count: int = 1,
    source: str = "web",
    namespace: str = "payments",
    port: int | None = 443,
    protocol: str = "tcp",
    direction: str = "ingress",
    node: str | None = "n1",
    cluster: str | None = "prod",
    disposition: str = "deny",
) -> PolicyEvent:
    """A deny from pod checkout/`source` to pod `namespace`/api (egress: the policed side is checkout)."""
    return PolicyEvent(
        insert_id=f"e{next(_serial)}",
        timestamp=moment,
        direction="egress" if direction == "egress" else "ingress",
        disposition=disposition,
        protocol=protocol,
        src=Endpoint("pod", namespace="checkout", workload=source),
        dest=Endpoint("pod", namespace=namespace, workload="api"),
        count=count,
        dest_port=port,
        cluster=cluster,
        node=node,
    )


def key(
    hour: int = H10,
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


def node_row(
    attempts: int,
    *,
    source: str = "checkout/web",
    destination: str = "payments/api",
    port: int = 443,
    protocol: str = "tcp",
    direction: str = "ingress",
    node: str = "n1",
    namespace: str = "payments",
    last: datetime = T0,
    muted: int = 0,
) -> FlowNode:
    """A `flow_nodes` row: `attempts` over `attempts` entries, first seen an hour before `last`."""
    return FlowNode(
        "prod", direction, source, destination, port, protocol, node, namespace,
        attempts, attempts, last - HOUR, last, muted,
    )  # fmt: skip


# -- hours and windows --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "hour"),
    [
        (at(10), at(10)),
        (at(10, 0, 0, 1), at(10)),
        (at(10, 59, 59, 999_999), at(10)),
        (at(11), at(11)),
        (at(9, 59, 59, 999_999), at(9)),
        (at(0), at(0)),
        (at(23, 59, 59, 999_999), at(23)),
        (datetime(2026, 5, 4, 12, 30, tzinfo=timezone(timedelta(hours=2))), at(10)),  # an aware non-UTC time
        (datetime(2026, 5, 4, 15, 29, tzinfo=timezone(timedelta(hours=5, minutes=30))), at(9)),
        (datetime(1970, 1, 1, 1, 0, 1, tzinfo=UTC), datetime(1970, 1, 1, 1, tzinfo=UTC)),
    ],
)
def test_hour_of(moment: datetime, hour: datetime) -> None:
    assert hour_of(moment) == int(hour.timestamp())
    assert hour_start(hour_of(moment)) == hour


def test_hour_of_counts_seconds_since_the_epoch() -> None:
    assert hour_of(datetime(1970, 1, 1, 1, 59, tzinfo=UTC)) == 3600
    assert hour_start(7200) == datetime(1970, 1, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "since", "start", "hours"),
    [
        (at(10, 25), HOUR, at(9), 2),  # "the last hour" at 10:25 reads 09:00-10:25
        (at(10, 25), 15 * MIN, at(10), 1),  # the current, partly filled hour alone
        (at(10, 25), 25 * MIN, at(10), 1),  # 10:00 exactly: still one hour
        (at(10, 25), 26 * MIN, at(9), 2),
        (at(10), HOUR, at(9), 1),  # ends exactly on an hour: 10:00's hour is not read
        (at(10, 0, 0, 1), HOUR, at(9), 2),
        (at(10, 59, 59, 999_999), HOUR, at(9), 2),
        (at(11), 2 * HOUR, at(9), 2),
        (at(10, 25), 24 * HOUR, at(10) - 24 * HOUR, 25),
        (at(10, 25), 47 * HOUR, at(11) - 48 * HOUR, 48),  # just under two days: still hours
        # Two days and more are read in whole UTC days (the daily rows), today so far included.
        (at(10, 25), 48 * HOUR, at(0) - 48 * HOUR, 48 + 11),
        (at(10, 25), 7 * 24 * HOUR, at(0) - 7 * 24 * HOUR, 7 * 24 + 11),
    ],
)
def test_window_since(now: datetime, since: timedelta, start: datetime, hours: int) -> None:
    window = Window.since(now, since)
    assert (window.start, window.end, window.hours) == (start, now, hours)
    assert window.first_hour == hour_of(start)
    assert window.last_hour == hour_of(now - US)
    assert (window.last_hour - window.first_hour) // 3600 + 1 == hours


@pytest.mark.parametrize(
    ("window", "previous"),
    [
        (Window.since(at(10, 25), HOUR), Window(at(7), at(9))),
        (Window.since(at(10), HOUR), Window(at(8), at(9))),
        (Window.since(at(10, 25), 15 * MIN), Window(at(9), at(10))),
        (Window(at(9), at(12)), Window(at(6), at(9))),
    ],
)
def test_previous_is_the_same_whole_hours_just_before(window: Window, previous: Window) -> None:
    assert window.previous() == previous
    assert previous.hours == window.hours
    assert previous.last_hour == window.first_hour - 3600


def test_an_empty_window_reads_no_hour() -> None:
    window = Window(at(10), at(10))
    assert window.hours == 0
    assert flow_nodes({key(): Cell("payments", 1, 1, at(10), at(10))}, FlowFilter(), window) == []


# -- roll_up -----------------------------------------------------------------------------------


def test_roll_up_sums_one_flow_per_node_and_hour() -> None:
    events = [
        deny(at(10, 40), count=5),
        deny(at(10, 5), count=2),
        deny(at(10, 59, 59, 999_999), count=1),
        deny(at(10, 20), count=3),
    ]
    assert roll_up(events) == {key(): Cell("payments", 11, 4, at(10, 5), at(10, 59, 59, 999_999))}


def test_roll_up_of_nothing_is_empty() -> None:
    assert roll_up([]) == {}
    assert roll_up([deny(at(10), disposition="allow")]) == {}


@pytest.mark.parametrize(
    ("event", "cell_key", "cell"),
    [
        (deny(at(11)), key(H10 + 3600), Cell("payments", 1, 1, at(11), at(11))),  # xx:00:00 opens an hour
        (deny(at(9, 59, 59, 999_999)), key(H10 - 3600), None),
        (deny(at(10), node="n2"), key(node="n2"), None),
        (deny(at(10), node=None), key(node=""), None),
        (deny(at(10), cluster=None), key(cluster=""), None),
        (deny(at(10), port=None, protocol="icmp"), key(port=0, protocol="icmp"), None),
        (deny(at(10), port=8443), key(port=8443), None),
        (deny(at(10), protocol="udp"), key(protocol="udp"), None),
        (deny(at(10), source="cron"), key(source="checkout/cron"), None),
        # egress: the policed namespace is the source's
        (deny(at(10), direction="egress"), key(direction="egress"), Cell("checkout", 1, 1, at(10), at(10))),
    ],
)
def test_roll_up_keys_each_part_of_the_flow_apart(
    event: PolicyEvent, cell_key: CellKey, cell: Cell | None
) -> None:
    cells = roll_up([deny(at(10, 30), count=7), event])
    assert cells[key()] == Cell("payments", 7, 1, at(10, 30), at(10, 30))
    assert cells[cell_key] == (cell or Cell("payments", 1, 1, event.timestamp, event.timestamp))
    assert len(cells) == 2


def test_roll_up_ignores_allows() -> None:
    cells = roll_up([deny(at(10), count=4), deny(at(10, 1), count=100, disposition="allow")])
    assert cells == {key(): Cell("payments", 4, 1, at(10), at(10))}


def test_roll_up_marks_muted_events_and_keeps_them_apart() -> None:
    events = [
        deny(at(10, 1), count=2),
        deny(at(10, 2), count=3, node="n2"),
        deny(at(10, 3), count=5),
        deny(at(10, 4), count=7, namespace="billing"),
    ]
    cells = roll_up(events, lambda event: event.node == "n2" or event.count == 5)
    assert cells == {
        key(): Cell("payments", 2, 1, at(10, 1), at(10, 1)),
        key(muted=True): Cell("payments", 5, 1, at(10, 3), at(10, 3)),
        key(node="n2", muted=True): Cell("payments", 3, 1, at(10, 2), at(10, 2)),
        key(destination="billing/api"): Cell("billing", 7, 1, at(10, 4), at(10, 4)),
    }
    assert sum(cell.attempts for cell in cells.values()) == 17  # muted ones are counted, not dropped


def test_roll_up_without_a_muted_predicate_marks_nothing() -> None:
    assert [k.muted for k in roll_up([deny(at(10)), deny(at(11))])] == [False, False]


# -- filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flow_filter", "matches"),
    [
        (FlowFilter(), True),
        (FlowFilter(cluster="prod"), True),
        (FlowFilter(cluster="Prod"), False),
        (FlowFilter(cluster="pro*"), False),  # cluster is exact, not a glob
        (FlowFilter(namespace="payments"), True),
        (FlowFilter(namespace="pay*"), False),
        (FlowFilter(namespace="billing"), False),
        (FlowFilter(src="checkout/web"), True),
        (FlowFilter(src="checkout/*"), True),
        (FlowFilter(src="*/web"), True),
        (FlowFilter(src="checkout/we?"), True),
        (FlowFilter(src="checkout/w?"), False),
        (FlowFilter(src="Checkout/*"), False),  # globs are case-sensitive
        (FlowFilter(src="checkout"), False),  # a glob matches the whole label
        (FlowFilter(dst="payments/api"), True),
        (FlowFilter(dst="payments/API"), False),
        (FlowFilter(dst="*"), True),
        (FlowFilter(dst="*/api"), True),
        (FlowFilter(dst="checkout/*"), False),
        (FlowFilter(port=443), True),
        (FlowFilter(port=80), False),
        (FlowFilter(protocol="tcp"), True),
        (FlowFilter(protocol="udp"), False),
        (FlowFilter("prod", "payments", "checkout/*", "payments/*", 443, "tcp"), True),
        (FlowFilter("prod", "payments", "checkout/*", "payments/*", 443, "udp"), False),
    ],
)
def test_flow_filter_matches(flow_filter: FlowFilter, matches: bool) -> None:
    assert flow_filter.matches(key(), "payments") is matches


def test_flow_filter_on_no_port_is_port_zero() -> None:
    assert FlowFilter(port=0).matches(key(port=0, protocol="icmp"), "payments")
    assert not FlowFilter(port=443).matches(key(port=0, protocol="icmp"), "payments")


# -- flow_nodes, flow_totals -------------------------------------------------------------------


def test_flow_nodes_merges_the_window_hours_only() -> None:
    cells = {
        key(H10 - 7200): Cell("payments", 1, 1, at(8, 30), at(8, 30)),  # before the window
        key(H10 - 3600): Cell("payments", 10, 2, at(9, 0), at(9, 50)),
        key(H10): Cell("payments", 100, 3, at(10, 0), at(10, 20, 0, 1)),  # the current hour
        key(H10 + 3600): Cell("payments", 1000, 4, at(11, 0), at(11, 5)),  # after it
    }
    [row] = flow_nodes(cells, FlowFilter(), Window.since(at(10, 25), HOUR))
    expected = ("prod", "ingress", "checkout/web", "payments/api", 443, "tcp", "n1", "payments")
    assert row == FlowNode(*expected, 110, 5, at(9), at(10, 20, 0, 1), 0)


def test_flow_nodes_keeps_muted_attempts_apart_and_nodes_separate() -> None:
    cells = {
        key(H10 - 3600): Cell("payments", 4, 1, at(9, 10), at(9, 10)),
        key(H10 - 3600, muted=True): Cell("payments", 3, 2, at(9, 5), at(9, 40)),
        key(H10, muted=True): Cell("payments", 2, 1, at(10, 1), at(10, 1)),
        key(H10, node="n2"): Cell("payments", 9, 1, at(10, 2), at(10, 2)),
        key(H10, destination="billing/api"): Cell("billing", 1, 1, at(10, 3), at(10, 3)),
    }
    rows = flow_nodes(cells, FlowFilter(namespace="payments"), Window.since(at(10, 25), HOUR))
    assert sorted(
        (r.node, r.attempts, r.entries, r.first_seen, r.last_seen, r.muted_attempts) for r in rows
    ) == [
        ("n1", 9, 4, at(9, 5), at(10, 1), 5),
        ("n2", 9, 1, at(10, 2), at(10, 2), 0),
    ]


def test_flow_nodes_does_not_change_the_cells() -> None:
    cells = {
        key(H10 - 3600): Cell("payments", 4, 1, at(9, 10), at(9, 10)),
        key(H10): Cell("payments", 2, 1, at(10, 1), at(10, 1)),
    }
    flow_nodes(cells, FlowFilter(), Window.since(at(10, 25), HOUR))
    assert cells[key(H10 - 3600)] == Cell("payments", 4, 1, at(9, 10), at(9, 10))


def test_flow_totals_merges_nodes() -> None:
    rows = [
        node_row(5, node="n2", last=at(10, 5), muted=1),
        node_row(3, node="n1", last=at(10, 20)),
        node_row(2, node="", last=at(9, 30)),
        node_row(7, destination="metadata-server", port=0, protocol="icmp", direction="egress", node="n1"),
    ]
    payments, metadata = flow_totals(rows)
    assert (payments.attempts, payments.entries, payments.muted_attempts) == (10, 10, 1)
    assert (payments.first_seen, payments.last_seen) == (at(8, 30), at(10, 20))
    assert payments.nodes == ("n1", "n2")  # sorted, the unknown node left out
    assert (payments.dest_port, payments.port_label) == (443, "443/tcp")
    assert (metadata.destination, metadata.dest_port, metadata.port_label) == (
        "metadata-server",
        None,
        "icmp",
    )
    assert metadata.nodes == ("n1",)


# -- recent ------------------------------------------------------------------------------------


def test_recent_lists_newest_first_with_totals() -> None:
    rows = [
        node_row(5, source="a", last=at(10, 1)),
        node_row(1, source="b", last=at(10, 20), muted=1),
        node_row(9, source="c", last=at(9, 50)),
        node_row(2, source="b", last=at(10, 10), node="n2"),
        node_row(4, source="d", last=at(10, 15), muted=4),
    ]
    answer = recent(rows, limit=2)
    assert [(f.source, f.attempts, f.last_seen) for f in answer.flows] == [
        ("b", 3, at(10, 20)),
        ("d", 4, at(10, 15)),
    ]
    assert (answer.more, answer.flow_count, answer.attempts, answer.entries, answer.muted_attempts) == (
        2,
        4,
        21,
        21,
        5,
    )
    assert recent(rows, limit=10).more == 0
    assert [f.source for f in recent(rows, limit=10).flows] == ["b", "d", "a", "c"]


def test_recent_of_nothing() -> None:
    answer = recent([], limit=20)
    assert (answer.flows, answer.more, answer.flow_count, answer.attempts) == ((), 0, 0, 0)


def test_recent_breaks_ties_by_attempts_then_by_flow_whatever_the_rows_order() -> None:
    """Two databases (or one database on two days) return rows in different orders: the same
    window must give the same answer."""
    same = at(10, 20)
    rows = [
        node_row(3, source="x", last=same),
        node_row(3, source="a", last=same),
        node_row(3, source="m", last=same, port=80),
        node_row(3, source="m", last=same),
        node_row(8, source="z", last=same),
        node_row(1, source="old", last=at(9)),
    ]
    expected = [("z", 443), ("a", 443), ("m", 80), ("m", 443), ("x", 443), ("old", 443)]
    shuffler = random.Random(7)
    for _ in range(20):
        shuffler.shuffle(rows)
        assert [(f.source, f.dest_port) for f in recent(rows, limit=10).flows] == expected
        answer = recent(rows, limit=3)
        assert ([(f.source, f.dest_port) for f in answer.flows], answer.more) == (expected[:3], 3)


# -- top ---------------------------------------------------------------------------------------

TOP_ROWS = [
    node_row(5, node="n1"),
    node_row(3, node="n2"),
    node_row(4, destination="billing/api", namespace="billing"),
    node_row(
        2,
        source="jobs/etl",
        destination="metadata-server",
        port=0,
        protocol="icmp",
        direction="egress",
        node="",
        namespace="jobs",
    ),
]


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("namespace", [("payments", 8), ("billing", 4), ("jobs", 2)]),
        (
            "flow",
            [
                ("checkout/web → payments/api:443/tcp (ingress)", 8),
                ("checkout/web → billing/api:443/tcp (ingress)", 4),
                ("jobs/etl → metadata-server:icmp (egress)", 2),
            ],
        ),
        ("source", [("checkout/web", 12), ("jobs/etl", 2)]),
        ("destination", [("payments/api", 8), ("billing/api", 4), ("metadata-server", 2)]),
        ("node", [("n1", 9), ("n2", 3), ("(no node)", 2)]),
        ("port", [("443/tcp", 12), ("icmp", 2)]),
    ],
)
def test_top_by_each_key(by: TopBy, expected: list[tuple[str, int]]) -> None:
    answer = top(TOP_ROWS, [], by, limit=10)
    assert [(row.key, row.attempts) for row in answer.rows] == expected
    assert (answer.by, answer.more, answer.total, answer.previous_total) == (by, 0, 14, 0)
    assert all(row.previous is None and row.change is None for row in answer.rows)


def test_top_covers_every_by() -> None:
    assert set(TOP_BY) == {"namespace", "flow", "source", "destination", "node", "port"}


def test_top_names_a_missing_namespace() -> None:
    [row] = top([node_row(2, namespace="")], [], "namespace", limit=10).rows
    assert row.key == "(no namespace)"


def test_top_compares_with_the_previous_period() -> None:
    previous = [
        node_row(4),  # payments
        node_row(4, source="jobs/etl", destination="x", direction="egress", namespace="jobs"),
        node_row(6, destination="gone/api", namespace="gone"),  # absent now: not a row
    ]
    answer = top(TOP_ROWS, previous, "namespace", limit=10)
    assert answer.rows == (TopRow("payments", 8, 4), TopRow("billing", 4, None), TopRow("jobs", 2, 4))
    assert [row.change for row in answer.rows] == [1.0, None, -0.5]
    assert (answer.total, answer.previous_total) == (14, 14)


@pytest.mark.parametrize(
    ("row", "total", "share"),
    [
        (TopRow("a", 8, None), 14, 8 / 14),
        (TopRow("a", 14, None), 14, 1.0),
        (TopRow("a", 0, None), 0, 0.0),  # no division by zero
    ],
)
def test_share(row: TopRow, total: int, share: float) -> None:
    assert row.share(total) == pytest.approx(share)


@pytest.mark.parametrize(
    ("row", "change"),
    [
        (TopRow("a", 15, 10), 0.5),
        (TopRow("a", 10, 10), 0.0),
        (TopRow("a", 5, 10), -0.5),
        (TopRow("a", 5, None), None),  # new
        (TopRow("a", 5, 0), None),
    ],
)
def test_change(row: TopRow, change: float | None) -> None:
    assert row.change == change


def test_top_orders_ties_by_key_and_limits() -> None:
    rows = [node_row(3, node="n3"), node_row(5, node="n9"), node_row(3, node="n1"), node_row(3, node="n2")]
    answer = top(rows, [], "node", limit=3)
    assert [(row.key, row.attempts) for row in answer.rows] == [("n9", 5), ("n1", 3), ("n2", 3)]
    assert (answer.more, answer.total) == (1, 14)  # the total counts the rows left off too
    assert top(list(reversed(rows)), [], "node", limit=3) == answer


@pytest.mark.parametrize("by", TOP_BY)
def test_top_of_nothing(by: TopBy) -> None:
    assert top([], [], by, limit=5).rows == ()


# -- SQL LIKE ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "like"),
    [
        ("payments/api", "payments/api"),
        ("payments/*", "payments/%"),
        ("10.0.0.?", "10.0.0._"),
        ("corp_vpn", "corp\\_vpn"),
        ("50%*", "50\\%%"),
        ("smb\\share", "smb\\\\share"),
        ("\\*", "\\\\%"),
        ("*_?%\\", "%\\__\\%\\\\"),
        ("", ""),
    ],
)
def test_glob_to_like(glob: str, like: str) -> None:
    assert glob_to_like(glob) == like


def test_a_week_is_read_in_whole_days_and_compared_with_the_days_before() -> None:
    window = Window.since(at(10, 25), 7 * 24 * HOUR)
    assert window.unit == timedelta(days=1)
    assert window.buckets == 8  # seven whole days and today so far
    assert window.previous() == Window(at(0) - 15 * 24 * HOUR, at(0) - 7 * 24 * HOUR, timedelta(days=1))
    assert window.scale == pytest.approx((7 * 24 + 10 + 25 / 60) / (8 * 24))
