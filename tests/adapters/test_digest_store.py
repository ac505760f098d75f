"""The digest from a real store, on SQLite and PostgreSQL: entries go in through `store_messages`
and the `GroupingWorker` (as ingest and grouping put them there), and `Digests` reads them back
through the store's queries (`flow_hours`, `flow_sums`, `seen_before`, `hours_with_entries`,
`reject_counts`, `arrival_delays`, `alert_counts`, active mutes).

Two days of traffic: day one has flow A (the history's first day), day two has A again and a new
flow B, a muted flow, a reject and an hour with no entries at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.adapters.store import Store
from bot.core.digest import Period
from bot.core.events import NetworkNames, RawMessage
from bot.core.grouping import Grouper, GroupingPolicy
from bot.core.history import Window, hour_of
from bot.core.mutes import Mute
from bot.core.outbox import alert_message
from bot.core.routing import Route, RoutingTable
from bot.pipeline import GroupingWorker, entry_parser, store_messages
from bot.services.digest import Digests
from tests.logentries import raw_message

DAY1 = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
HOUR = timedelta(hours=1)
ROUTING = RoutingTable((Route((("namespace", "payments"),), "C0PAY"),), "C0DEFAULT")


def feed(store: Store, messages: list[RawMessage], now: datetime) -> None:
    store_messages(store, messages, entry_parser(NetworkNames()), now)
    GroupingWorker(store, Grouper(GroupingPolicy(), ROUTING)).catch_up(now)


def fill(store: Store) -> None:
    # Day one: flow A (checkout/web → payments/api) in hours 1 and 2.
    feed(
        store,
        [
            raw_message(at=DAY1 + HOUR + timedelta(minutes=5), count=10),
            raw_message(at=DAY1 + 2 * HOUR, count=5),
        ],
        DAY1 + 3 * HOUR,
    )
    # A mute on namespace web (set before day two's traffic), ending an hour after day two.
    store.mutes.add(
        Mute(0, (("namespace", "web"),), DAY2, DAY2 + timedelta(days=1, hours=1), "U0OPS", "deploy")
    )
    # Day two: A again, new flow B (batch/cron → web/api, muted), and a reject; hour 5 silent.
    feed(
        store,
        [
            raw_message(at=DAY2 + 3 * HOUR, count=30),
            raw_message(
                at=DAY2 + 4 * HOUR, source="cron", source_namespace="batch", namespace="web", count=4
            ),
            RawMessage(b"not json"),
        ],
        DAY2 + 5 * HOUR + timedelta(minutes=30),
    )


def test_a_digest_of_everything_from_the_store(store: Store) -> None:
    fill(store)
    period = Period(DAY2, DAY2 + 6 * HOUR)
    (digest,) = Digests(store, ROUTING, ()).make(period)
    assert digest.channel is None
    assert not digest.scoped
    assert (digest.attempts, digest.flow_count, digest.muted_attempts) == (34, 2, 4)
    assert [f.source for f in digest.new_flows] == ["batch/cron"]
    assert [f.source for f in digest.top_flows] == ["checkout/web", "batch/cron"]
    # The previous six hours (day one 18:00-24:00) hold nothing; day one's 15 are the daily average.
    assert digest.previous_attempts == 0
    assert digest.average_days == 1
    assert digest.daily_average == 15
    assert [share.name for share in digest.namespaces] == ["payments", "web"]
    silent = [hour_of(h) for h in digest.health.silent_hours]
    assert silent == [hour_of(DAY2 + n * HOUR) for n in (0, 1, 2, 5)]
    assert digest.health.rejects == (("not_json", 1),)
    assert digest.health.lag is not None
    assert [m.label for m in digest.mutes_expiring] == ["namespace=web"]
    assert sum(digest.series.stacks[0][1]) + sum(sum(v) for _, v in digest.series.stacks[1:]) == 34


def test_a_channels_digest_is_scoped_by_routing(store: Store) -> None:
    fill(store)
    period = Period(DAY2, DAY2 + 6 * HOUR)
    pay, default = Digests(store, ROUTING, ("C0PAY", "C0DEFAULT")).make(period)
    assert (pay.channel, pay.attempts, [f.source for f in pay.top_flows]) == ("C0PAY", 30, ["checkout/web"])
    assert pay.new_flow_count == 0  # A was seen on day one
    assert (default.attempts, default.new_flow_count) == (4, 1)


def test_flow_sums_read_closed_days_and_hours_alike(store: Store) -> None:
    fill(store)
    # Day one is closed (summed into the daily rows) once day two's commit ran: both tables agree.
    whole = store.history.flow_sums(Window(DAY1, DAY2))
    assert [(r.source, r.attempts) for r in whole] == [("checkout/web", 15)]
    assert store.history.seen_before(DAY2, ["payments", "web"]) == {
        ("prod", "ingress", "checkout/web", "payments/api", 443, "tcp")
    }
    assert store.history.seen_before(DAY1, ["payments"]) == set()


def test_alert_counts_come_from_the_queued_notifications(store: Store) -> None:
    grouper = Grouper(GroupingPolicy(), ROUTING)
    parser = entry_parser(NetworkNames())
    grouper.fold(parser.parse(raw_message(at=DAY2).data), DAY2)
    grouper.fold(parser.parse(raw_message(at=DAY2, namespace="web").data), DAY2)
    opened = grouper.tick(DAY2 + timedelta(minutes=1))  # past group_wait
    resolved = grouper.tick(DAY2 + HOUR)  # past resolve_after
    assert [n.kind for n in opened] == ["open", "open"]
    assert [n.kind for n in resolved] == ["resolve"] * 2
    for note in opened:
        store.outbox.enqueue(alert_message(note), DAY2 + timedelta(minutes=1))
    for note in resolved:
        store.outbox.enqueue(alert_message(note), DAY2 + HOUR)
    assert store.outbox.alert_counts(DAY2, DAY2 + 3 * HOUR) == {"C0PAY": (1, 1), "C0DEFAULT": (1, 1)}
    assert store.outbox.alert_counts(DAY2, DAY2 + HOUR) == {"C0PAY": (1, 0), "C0DEFAULT": (1, 0)}
    assert store.outbox.alert_counts(DAY2 + 3 * HOUR, DAY2 + 4 * HOUR) == {}


def test_a_node_at_the_line_cap_is_kept_with_the_history_and_named(store: Store) -> None:
    burst = [raw_message(at=DAY2 + HOUR, node="gke-pool-7", insert_id=f"b{n}") for n in range(520)]
    feed(store, burst, DAY2 + 2 * HOUR)
    feed(
        store,
        [raw_message(at=DAY2 + HOUR, node="gke-pool-7", insert_id=f"c{n}") for n in range(500)],
        DAY2 + 3 * HOUR,
    )
    (digest,) = Digests(store, ROUTING, ()).make(Period(DAY2, DAY2 + 6 * HOUR))
    # Two batches of one second: the hour keeps the higher peak (batches are counted apart).
    assert [(c.node, c.peak, c.hour) for c in digest.health.capped] == [
        ("gke-pool-7", 520, hour_of(DAY2 + HOUR))
    ]
    assert store.history.node_caps(hour_of(DAY2 + 2 * HOUR), hour_of(DAY2 + 6 * HOUR)) == []
    store.purge(DAY2 + 2 * HOUR + timedelta(days=91), timedelta(days=7), timedelta(days=90))
    assert store.history.node_caps(0, hour_of(DAY2 + 6 * HOUR)) == []
