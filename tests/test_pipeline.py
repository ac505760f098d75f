"""The pipeline over a real store (SQLite and PostgreSQL): ingest stores, grouping consumes stored
events through its cursor, and a restart or a failed commit neither loses nor re-counts anything."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from bot.adapters.store import Store
from bot.core.events import NetworkNames, RawMessage
from bot.core.grouping import Grouper, GroupingPolicy
from bot.core.history import hour_of
from bot.core.mutes import Mute
from bot.core.outbox import AlertPost
from bot.core.routing import Route, RoutingTable
from bot.pipeline import (
    GROUPING_CURSOR,
    LAG_SAMPLE,
    GroupingWorker,
    entry_parser,
    spread,
    store_messages,
)
from tests.logentries import raw_message
from tests.store_queries import total_attempts

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
POLICY = GroupingPolicy(group_wait=timedelta(seconds=30), group_interval=timedelta(minutes=1))
ROUTING = RoutingTable((Route((("namespace", "payments"),), "#payments"),), "#netlog")

PARSER = entry_parser(NetworkNames())


def message(namespace: str = "payments", count: int = 1, insert_id: str | None = None) -> RawMessage:
    """A deny at T0 from checkout/web to `namespace`/api:443, with IPs and no project label."""
    ips = ("10.0.0.1", "10.0.0.2")
    return raw_message(namespace=namespace, count=count, insert_id=insert_id, at=T0, project=None, ips=ips)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def before_read(
    nth: int, read: Callable[[int, int], object], action: Callable[[], None]
) -> Callable[[int, int], object]:
    """`read` (a store's `events.read`) that runs `action` just before its `nth` call reads."""
    calls = 0

    def reading(after: int, limit: int) -> object:
        nonlocal calls
        calls += 1
        if calls == nth:
            action()
        return read(after, limit)

    return reading


def worker(store: Store) -> GroupingWorker:
    return GroupingWorker(store, Grouper(POLICY, ROUTING), batch_size=7)


def test_store_messages_keeps_events_and_rejects(store: Store) -> None:
    batch = [message(count=3), RawMessage(b"{oops", "m-2"), message(count=2)]
    result = store_messages(store, batch, PARSER, at(0))
    assert (result.stored, result.duplicates, result.rejected) == (2, 0, 1)
    assert total_attempts(store) == 5
    [reject] = store.events.rejects()
    assert (reject.code, reject.message_id, reject.raw) == ("not_json", "m-2", b"{oops")


def test_grouping_consumes_stored_events_and_queues_notifications(store: Store) -> None:
    store_messages(store, [message(count=2) for _ in range(20)] + [message("web")], PARSER, at(0))
    grouping = worker(store)
    assert grouping.catch_up(at(5)) == []
    notes = grouping.step(at(35))
    assert sorted((n.channel, n.kind, n.total) for n in notes) == [
        ("#netlog", "open", 1),
        ("#payments", "open", 40),
    ]
    outbox = [item.message for item in store.outbox.pending()]
    assert outbox == [AlertPost(note) for note in notes]
    assert store.grouping.cursor(GROUPING_CURSOR) == max(i for i, _ in store.events.read(0, 100))


def test_a_restart_resumes_from_the_cursor_without_recounting(store: Store) -> None:
    store_messages(store, [message() for _ in range(10)], PARSER, at(0))
    first = worker(store)
    first.catch_up(at(0))
    [opened] = first.step(at(30))
    store_messages(store, [message(count=2) for _ in range(10)], PARSER, at(40))
    first.step(at(40))  # folds 7 of the 10 new events (one batch), then the process dies

    second = worker(store)  # a restart, or another replica taking over
    notes = second.catch_up(at(95))
    assert [(n.kind, n.group_id, n.total) for n in notes] == [("update", opened.group_id, 30)]


def test_a_failed_commit_is_retried_without_double_counting(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_messages(store, [message(count=2) for _ in range(5)], PARSER, at(0))
    grouping = worker(store)

    def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionError("database went away")

    with monkeypatch.context() as patch:
        patch.setattr(store.grouping, "commit", broken)
        with pytest.raises(ConnectionError):
            grouping.step(at(0))
        patch.setattr(store.grouping, "load", broken)  # the database is still down at the next step
        with pytest.raises(ConnectionError):
            grouping.step(at(0))
    grouping.catch_up(at(1))
    [opened] = grouping.step(at(31))
    assert (opened.kind, opened.total) == ("open", 10)


def test_redelivered_messages_do_not_count_twice(store: Store) -> None:
    same = message(count=9, insert_id="same-id")
    store_messages(store, [same, same], PARSER, at(0))
    store_messages(store, [same], PARSER, at(10))
    grouping = worker(store)
    grouping.catch_up(at(10))
    [opened] = grouping.step(at(40))
    assert opened.total == 9


def test_muted_denies_are_stored_but_alert_nobody_until_the_mute_expires(store: Store) -> None:
    store.mutes.add(Mute(0, (("namespace", "pay*"),), at(0), at(3600), "U0OP", "known"))
    store_messages(store, [message(count=4) for _ in range(3)] + [message("web")], PARSER, at(0))
    grouping = worker(store)
    grouping.catch_up(at(0))
    notes = grouping.step(at(30))
    assert [(n.channel, n.total) for n in notes] == [("#netlog", 1)]  # payments was muted
    assert total_attempts(store) == 13  # ...but stored and counted
    store_messages(store, [message(count=5)], PARSER, at(3601))
    grouping.catch_up(at(3601))
    [opened] = grouping.step(at(3640))
    assert (opened.channel, opened.total) == ("#payments", 5)


def test_a_store_outage_during_grouping_neither_restarts_groups_nor_recounts(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_messages(store, [message() for _ in range(5)], PARSER, at(0))
    grouping = worker(store)
    grouping.catch_up(at(0))
    [opened] = grouping.step(at(30))
    store_messages(store, [message() for _ in range(3)], PARSER, at(35))

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("database went away")

    with monkeypatch.context() as patch:
        patch.setattr(store.grouping, "commit", down)
        patch.setattr(store.grouping, "load", down)
        for second in (40, 41, 42):
            with pytest.raises(ConnectionError):
                grouping.step(at(second))
    notes = grouping.catch_up(at(95))
    assert [(n.kind, n.group_id, n.total) for n in notes] == [("update", opened.group_id, 8)]


def test_a_step_read_in_parts_commits_what_one_read_would(store: Store) -> None:
    """A step reads `read_size` events at a time but commits them together: the same totals,
    history and line-cap peak as a step that read them at once (a capped second read in two
    parts is counted whole), in one transaction."""
    burst = [raw_message(at=T0, node="n7", insert_id=f"burst-{n}", count=2) for n in range(500)]
    store_messages(store, burst, PARSER, at(0))
    grouping = GroupingWorker(store, Grouper(POLICY, ROUTING), batch_size=1_000, read_size=150)
    assert grouping.step(at(1)) == []
    assert not grouping.behind  # 500 of at most 1,000: nothing is left
    assert store.grouping.cursor(GROUPING_CURSOR) == max(i for i, _ in store.events.read(0, 1_000))
    hour = hour_of(T0)
    assert [(cap.node, cap.peak) for cap in store.history.node_caps(hour, hour + 3600)] == [("n7", 500)]
    [row] = store.history.flow_hours(hour, hour + 3600)
    assert (row.attempts, row.entries) == (1_000, 500)
    [opened] = grouping.step(at(31))
    assert (opened.kind, opened.total) == ("open", 1_000)


def test_a_full_step_says_it_is_behind_and_the_next_one_goes_on(store: Store) -> None:
    store_messages(store, [message() for _ in range(10)], PARSER, at(0))
    grouping = GroupingWorker(store, Grouper(POLICY, ROUTING), batch_size=6, read_size=4)
    grouping.step(at(1))
    assert grouping.behind
    assert len(store.events.read(store.grouping.cursor(GROUPING_CURSOR), 100)) == 4
    grouping.step(at(2))
    assert not grouping.behind
    [opened] = grouping.step(at(31))
    assert opened.total == 10


def test_a_store_failure_between_two_reads_of_a_step_recounts_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_messages(store, [message(count=3) for _ in range(9)], PARSER, at(0))
    grouping = GroupingWorker(store, Grouper(POLICY, ROUTING), batch_size=100, read_size=4)

    def went_away() -> None:
        raise ConnectionError("database went away")

    with monkeypatch.context() as patch:
        patch.setattr(store.events, "read", before_read(2, store.events.read, went_away))
        with pytest.raises(ConnectionError):
            grouping.step(at(1))  # the first 4 are folded in memory, never committed
    assert store.grouping.cursor(GROUPING_CURSOR) == 0
    grouping.catch_up(at(2))
    [opened] = grouping.step(at(32))
    assert opened.total == 27


def test_a_step_stops_reading_when_its_time_is_up_and_says_more_is_waiting(store: Store) -> None:
    """However large `batch_size` is, a step commits within about `step_seconds`, so a slow
    database cannot hold a step past the alerts lease; the loop then goes on at once."""
    store_messages(store, [message() for _ in range(10)], PARSER, at(0))
    grouping = GroupingWorker(store, Grouper(POLICY, ROUTING), batch_size=100, read_size=3, step_seconds=0)
    grouping.step(at(1))
    assert grouping.behind
    assert len(store.events.read(store.grouping.cursor(GROUPING_CURSOR), 100)) == 7
    while grouping.behind:
        grouping.step(at(2))
    [opened] = grouping.step(at(31))
    assert opened.total == 10


def test_a_mute_added_between_two_reads_of_a_step_applies_to_the_second(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mutes are read after each read of events, so a step judges every event by the mutes of a
    moment after it was stored, however many reads the step takes."""
    store_messages(store, [message(count=1) for _ in range(6)], PARSER, at(0))
    grouping = GroupingWorker(store, Grouper(POLICY, ROUTING), batch_size=100, read_size=3)

    def mute() -> None:
        store.mutes.add(Mute(0, (("namespace", "payments"),), at(0), at(3600), "U0OP", "noisy"))

    monkeypatch.setattr(store.events, "read", before_read(2, store.events.read, mute))
    grouping.step(at(1))
    [opened] = grouping.step(at(31))
    assert (opened.channel, opened.total) == ("#payments", 3)
    assert total_attempts(store) == 6


@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 150, 199, 200, 201, 1_000, 5_001])
def test_the_lag_sample_is_at_most_its_size_and_spread_from_the_first(size: int) -> None:
    items = list(range(size))
    sample = list(spread(items, LAG_SAMPLE))
    if size <= LAG_SAMPLE:
        assert sample == items
        return
    assert LAG_SAMPLE // 2 <= len(sample) <= LAG_SAMPLE  # never more, and not much fewer
    assert sample[0] == 0
    assert len({b - a for a, b in pairwise(sample)}) == 1  # evenly spaced
