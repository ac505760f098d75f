"""The durable store (`bot.adapters.store.Store`), on the embedded SQLite and on the real PostgreSQL.

Every test takes the `store` or `db_url` fixture, so each runs once per backend. Covered:

- `ingest()`: events read back equal (aware UTC timestamps, endpoints, policies), duplicates by
  insert_id within and across batches are skipped and counted, `read_events` pages in id order,
  rejects keep code, reason, message id and a truncated body with its original size;
- atomicity: a batch that fails half-way stores nothing, and the same batch retried stores all;
- `commit_grouping()`: cursor, group upserts and deletes, and outbox rows saved together, or not
  at all when any part fails; `pending_outbox` / `mark_delivered`;
- `purge()`: old events only once every cursor has passed them, old rejects, old delivered outbox
  rows; never undelivered rows or recent data; and new events never reuse an id a cursor passed;
- `UTCDateTime`: refuses naive datetimes, stores aware ones as UTC;
- concurrency: two writers with overlapping insert_ids store each id exactly once, and a cursor
  reading while they write sees every event (ids become visible in increasing order).

Failures "in the middle of a transaction" are injected with a SQLAlchemy `before_cursor_execute`
listener that raises when a given INSERT is about to run, after earlier statements have executed.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store import Fence, IngestResult, LeaseLost, Reject, Store
from bot.adapters.store.database import UTCDateTime
from bot.adapters.store.events import REJECT_RAW_LIMIT
from bot.adapters.store.tables import events
from bot.core.events import Endpoint, PolicyEvent
from bot.core.grouping import Group, Grouper, GroupingPolicy
from bot.core.routing import RoutingTable
from tests.adapters.store_support import CURSOR, T0, group, make_event, note
from tests.store_queries import event_count, insert_ids, total_attempts


@contextmanager
def failing_before(store: Store, table: str, seen: list[str] | None = None) -> Iterator[None]:
    """While active, every INSERT into `table` raises, as a dropped connection would, mid-transaction."""

    def listener(
        conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if seen is not None:
            seen.append(statement)
        if statement.lstrip().upper().startswith(f"INSERT INTO {table.upper()} "):
            raise InjectedFailure(f"injected failure before inserting into {table}")

    sa.event.listen(store.db.engine, "before_cursor_execute", listener)
    try:
        yield
    finally:
        sa.event.remove(store.db.engine, "before_cursor_execute", listener)


class InjectedFailure(RuntimeError):
    pass


def all_events(store: Store) -> list[tuple[int, PolicyEvent]]:
    return store.events.read(0, 100_000)


def by_key(groups: list[Group]) -> dict[str, Group]:
    return {group.key: group for group in groups}


# -- ingest -----------------------------------------------------------------------------------


def test_ingest_stores_events_that_read_back_equal(store: Store) -> None:
    pod_to_pod = make_event("e-pod", T0 + timedelta(microseconds=123456))
    egress_to_ip = PolicyEvent(
        insert_id="e-ip",
        timestamp=T0 + timedelta(seconds=1),
        direction="egress",
        disposition="deny",
        protocol="udp",
        src=Endpoint("pod", ip="10.4.0.9", namespace="jobs", pod="etl-28731450-q9z7k", workload="etl"),
        dest=Endpoint("ip", ip="169.254.169.254", network="metadata-server"),
        dest_port=53,
    )
    node_icmp = PolicyEvent(
        insert_id="e-node",
        timestamp=T0 + timedelta(seconds=2),
        direction="ingress",
        disposition="allow",
        protocol="icmp",
        src=Endpoint("node", ip="10.128.0.3", node="gke-prod-eu-pool-1-wxyz", workload_kind="Node"),
        dest=Endpoint("pod", ip="10.4.1.8", namespace="payments", pod="api-1"),
        count=7,
    )
    batch = [pod_to_pod, egress_to_ip, node_icmp]

    result = store.events.add(batch, [], T0 + timedelta(minutes=1))

    assert result == IngestResult(stored=3, duplicates=0, rejected=0)
    rows = all_events(store)
    assert [event for _, event in rows] == batch
    for (_, stored), original in zip(rows, batch, strict=True):
        assert stored.timestamp == original.timestamp
        assert stored.timestamp.tzinfo is not None
        assert stored.timestamp.utcoffset() == timedelta(0)
        assert stored.src == original.src
        assert stored.dest == original.dest
        assert stored.policies == original.policies
    assert event_count(store) == 3
    assert total_attempts(store) == 1 + 1 + 7
    assert insert_ids(store) == ["e-pod", "e-ip", "e-node"]


@pytest.mark.parametrize(
    "moment",
    [T0, T0 + timedelta(microseconds=1), T0 - timedelta(microseconds=1), datetime(1, 1, 1, tzinfo=UTC)],
    ids=["whole second", "a microsecond past", "a microsecond before", "year 1"],
)
def test_a_stored_timestamp_is_the_very_value_a_query_binds(store: Store, moment: datetime) -> None:
    """Event timestamps are written without SQLAlchemy's type processing (it cost a tenth of a
    batch): an equality query, bound the usual way, must still find the row."""
    store.events.add([make_event("e-1", moment)], [], moment)
    with store.db.connect() as conn:
        found = conn.execute(
            sa.select(events.c.insert_id).where(events.c.timestamp == moment, events.c.received_at == moment)
        ).scalars()
        assert list(found) == ["e-1"]


def test_ingest_skips_duplicates_within_a_batch(store: Store) -> None:
    batch = [make_event("a"), make_event("b"), make_event("a"), make_event("c"), make_event("b")]

    result = store.events.add(batch, [], T0)

    assert result == IngestResult(stored=3, duplicates=2, rejected=0)
    assert insert_ids(store) == ["a", "b", "c"]


def test_ingest_skips_duplicates_across_batches(store: Store) -> None:
    first = store.events.add([make_event("a", count=2), make_event("b")], [], T0)
    second = store.events.add([make_event("b"), make_event("c"), make_event("a", count=2)], [], T0)
    redelivered = store.events.add([make_event("c")], [], T0)

    assert first == IngestResult(stored=2, duplicates=0, rejected=0)
    assert second == IngestResult(stored=1, duplicates=2, rejected=0)
    assert redelivered == IngestResult(stored=0, duplicates=1, rejected=0)
    assert insert_ids(store) == ["a", "b", "c"]
    assert total_attempts(store) == 2 + 1 + 1  # a redelivery does not count its attempts again


def test_the_first_stored_copy_of_an_event_is_kept(store: Store) -> None:
    store.events.add([make_event("a", namespace="payments")], [], T0)
    store.events.add([make_event("a", namespace="other")], [], T0)

    [(_, stored)] = all_events(store)
    assert stored.dest.namespace == "payments"


def test_read_events_pages_in_id_order(store: Store) -> None:
    for start in range(0, 7, 3):  # batches of 3, 3, 1
        names = [f"e{n}" for n in range(start, min(start + 3, 7))]
        store.events.add(
            [make_event(name, T0 - timedelta(minutes=n)) for n, name in enumerate(names)], [], T0
        )

    pages: list[list[tuple[int, PolicyEvent]]] = []
    after = 0
    while page := store.events.read(after, 2):
        pages.append(page)
        after = page[-1][0]

    assert [len(page) for page in pages] == [2, 2, 2, 1]
    ids = [row_id for page in pages for row_id, _ in page]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert [event.insert_id for page in pages for _, event in page] == [f"e{n}" for n in range(7)]
    assert store.events.read(ids[-1], 10) == []
    assert [row_id for row_id, _ in store.events.read(ids[2], 10)] == ids[3:]
    assert store.events.read(0, 0) == []


def test_ingest_stores_rejects(store: Store) -> None:
    big = bytes(range(256)) * 20  # 5120 bytes, not valid UTF-8: kept as bytes
    exact = b"x" * REJECT_RAW_LIMIT
    rejected = [
        Reject("not_json", "the message is not JSON", big, message_id="1001"),
        Reject("wrong_log", "logName 'projects/p/logs/syslog' is not a policy-action log", b"{}"),
        Reject("bad_type", "count should be a positive whole number", exact, message_id="1003"),
        Reject("bad_type", "r" * 2500, b"[]", message_id="1004"),
    ]

    result = store.events.add([make_event("ok")], rejected, T0 + timedelta(seconds=5))

    assert result == IngestResult(stored=1, duplicates=0, rejected=4)
    assert store.events.reject_count() == 4
    newest_first = store.events.rejects()
    assert [r.message_id for r in newest_first] == ["1004", "1003", None, "1001"]
    assert [r.code for r in newest_first] == ["bad_type", "bad_type", "wrong_log", "not_json"]
    by_id = {r.message_id: r for r in newest_first}
    assert by_id["1001"].raw == big[:REJECT_RAW_LIMIT]
    assert by_id["1001"].raw_size == len(big) == 5120
    assert by_id["1001"].reason == "the message is not JSON"
    assert by_id["1003"].raw == exact
    assert by_id["1003"].raw_size == REJECT_RAW_LIMIT
    assert by_id[None].raw == b"{}"
    assert by_id[None].raw_size == 2
    assert by_id[None].reason == "logName 'projects/p/logs/syslog' is not a policy-action log"
    assert by_id["1004"].reason == "r" * 2000  # reasons are capped too
    for item in newest_first:
        assert item.received_at == T0 + timedelta(seconds=5)
        assert item.received_at.utcoffset() == timedelta(0)
    assert [r.message_id for r in store.events.rejects(limit=2)] == ["1004", "1003"]


def test_ingest_of_an_empty_batch_is_fine(store: Store) -> None:
    assert store.events.add([], [], T0) == IngestResult(stored=0, duplicates=0, rejected=0)
    assert event_count(store) == 0
    assert store.events.reject_count() == 0
    assert total_attempts(store) == 0
    assert all_events(store) == []


def test_ingest_of_rejects_only(store: Store) -> None:
    result = store.events.add([], [Reject("not_json", "nope", b"\xff")], T0)

    assert result == IngestResult(stored=0, duplicates=0, rejected=1)
    assert event_count(store) == 0
    assert store.events.reject_count() == 1


# -- atomicity --------------------------------------------------------------------------------


def test_a_batch_that_fails_half_way_stores_nothing(store: Store) -> None:
    store.events.add([make_event("before")], [], T0)
    batch = [make_event("a"), make_event("b"), make_event("before")]
    rejected = [Reject("not_json", "the message is not JSON", b"{", "m1")]
    statements: list[str] = []

    with failing_before(store, "rejects", statements), pytest.raises(InjectedFailure):
        store.events.add(batch, rejected, T0)

    # The events INSERT really ran inside the transaction before the failure, and was rolled back.
    assert any(s.lstrip().upper().startswith("INSERT INTO EVENTS") for s in statements)
    assert insert_ids(store) == ["before"]
    assert store.events.reject_count() == 0

    # Pub/Sub redelivers the batch: it is stored in full, not mistaken for duplicates.
    assert store.events.add(batch, rejected, T0) == IngestResult(stored=2, duplicates=1, rejected=1)
    assert insert_ids(store) == ["before", "a", "b"]
    assert store.events.reject_count() == 1


def test_a_failed_batch_does_not_disturb_the_next_one(store: Store) -> None:
    with failing_before(store, "rejects"), pytest.raises(InjectedFailure):
        store.events.add([make_event("lost")], [Reject("x", "y", b"z")], T0)

    assert store.events.add([make_event("next")], [], T0) == IngestResult(stored=1, duplicates=0, rejected=0)
    assert insert_ids(store) == ["next"]
    assert [event.insert_id for _, event in all_events(store)] == ["next"]


# -- grouping state and outbox -----------------------------------------------------------------


def test_commit_grouping_saves_cursor_groups_and_outbox(store: Store) -> None:
    g1_v1 = group("g1")
    g1_v2 = group("g1", 5, ports=(443, 8443, None))
    g2 = group("g2", 2)
    g3 = group("g3")

    store.grouping.commit(CURSOR, 5, [g1_v1, g2], [], [note("g1"), note("g2")], T0)

    assert store.grouping.cursor(CURSOR) == 5
    assert store.grouping.cursor("other") == 0
    assert by_key(store.grouping.load()) == {"g1": g1_v1, "g2": g2}

    store.grouping.commit(CURSOR, 9, [g1_v2, g3], ["g2", "missing"], [note("g1", "update", "#payments")], T0)

    assert store.grouping.cursor(CURSOR) == 9
    groups = store.grouping.load()
    assert len(groups) == 2
    assert by_key(groups) == {"g1": g1_v2, "g3": g3}

    pending = store.outbox.pending()
    assert [(p.group_id, p.kind, p.channel) for p in pending] == [
        ("g1", "alert_post", "#netlog"),
        ("g2", "alert_post", "#netlog"),
        ("g1", "alert_edit", "#payments"),
    ]
    assert [p.message for p in pending] == [note("g1"), note("g2"), note("g1", "update", "#payments")]
    ids = [p.id for p in pending]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert [p.id for p in store.outbox.pending(limit=2)] == ids[:2]

    store.outbox.mark_delivered(ids[:2], T0 + timedelta(seconds=1))
    assert [p.id for p in store.outbox.pending()] == ids[2:]
    store.outbox.mark_delivered([], T0 + timedelta(seconds=2))  # nothing to do, no error
    assert [p.id for p in store.outbox.pending()] == ids[2:]

    # A step with nothing new still moves the cursor without touching groups or the outbox.
    store.grouping.commit(CURSOR, 12, [], [], [], T0)
    assert store.grouping.cursor(CURSOR) == 12
    assert by_key(store.grouping.load()) == {"g1": g1_v2, "g3": g3}
    assert [p.id for p in store.outbox.pending()] == ids[2:]


def test_a_commit_writes_the_changed_flows_and_drops_the_evicted_ones(store: Store) -> None:
    grouper = Grouper(GroupingPolicy(max_flows_total=2), RoutingTable((), "#netlog"))
    grouper.fold(make_event("a", count=3), T0)
    store.grouping.commit(CURSOR, 1, *grouper.changes(), [], T0)
    moved = make_event("b", T0 + timedelta(seconds=1))
    grouper.fold(replace(moved, dest_port=443), T0 + timedelta(seconds=1))
    grouper.fold(
        replace(moved, dest_port=80), T0 + timedelta(seconds=2)
    )  # over the cap: the 8443 flow goes to `other`
    upserts, deletes = grouper.changes()
    assert [(len(c.flows or ()), len(c.evicted)) for c in upserts] == [(2, 1)]
    store.grouping.commit(CURSOR, 3, upserts, deletes, [], T0)

    (saved,) = store.grouping.load()
    (live,) = grouper.groups.values()
    assert saved == live
    assert (saved.total, saved.other_count, len(saved.flows)) == (5, 3, 2)


def test_cursors_are_independent(store: Store) -> None:
    store.grouping.commit("a", 3, [], [], [], T0)
    store.grouping.commit("b", 7, [], [], [], T0)
    store.grouping.commit("a", 4, [], [], [], T0)

    assert (store.grouping.cursor("a"), store.grouping.cursor("b")) == (4, 7)


@pytest.mark.parametrize("table", ["groups", "outbox"])
def test_commit_grouping_is_all_or_nothing(store: Store, table: str) -> None:
    before = group("g1")
    store.grouping.commit(CURSOR, 5, [before, group("g2")], [], [note("g1")], T0)
    pending_before = store.outbox.pending()

    with failing_before(store, table), pytest.raises(InjectedFailure):
        store.grouping.commit(CURSOR, 9, [group("g1", 9), group("g3")], ["g2"], [note("g3")], T0)

    assert store.grouping.cursor(CURSOR) == 5
    assert by_key(store.grouping.load()) == {"g1": before, "g2": group("g2")}
    assert store.outbox.pending() == pending_before


def test_a_failed_first_commit_leaves_no_cursor(store: Store) -> None:
    with failing_before(store, "outbox"), pytest.raises(InjectedFailure):
        store.grouping.commit(CURSOR, 9, [group("g1")], [], [note("g1")], T0)

    assert store.grouping.cursor(CURSOR) == 0
    assert store.grouping.load() == []
    assert store.outbox.pending() == []
    store.grouping.commit(CURSOR, 9, [group("g1")], [], [note("g1")], T0)  # the retry works
    assert store.grouping.cursor(CURSOR) == 9


# -- retention --------------------------------------------------------------------------------

NOW = T0 + timedelta(days=30)
RETENTION = timedelta(days=7)
CUTOFF = NOW - RETENTION


def ids_of(store: Store) -> dict[str, int]:
    return {event.insert_id: row_id for row_id, event in all_events(store)}


def test_purge_deletes_old_events_only_behind_the_cursor(store: Store) -> None:
    store.events.add([make_event("old-1", CUTOFF - timedelta(days=3))], [], NOW)
    store.events.add([make_event("old-2", CUTOFF - timedelta(seconds=1))], [], NOW)
    store.events.add([make_event("old-3", CUTOFF - timedelta(days=1))], [], NOW)  # not grouped yet
    store.events.add(
        [make_event("at-cutoff", CUTOFF), make_event("recent", NOW - timedelta(hours=1))], [], NOW
    )
    ids = ids_of(store)
    # Grouping has folded everything up to and including old-2; old-3 has not been folded yet, so
    # it must stay although it is old.
    store.grouping.commit(CURSOR, ids["old-2"], [], [], [], NOW)

    counts = store.purge(NOW, RETENTION)

    assert counts == {"events": 2, "rejects": 0, "outbox": 0, "slack_messages": 0}
    assert insert_ids(store) == ["old-3", "at-cutoff", "recent"]

    # Once the cursor passes everything, only what is not older than the cutoff stays.
    store.grouping.commit(CURSOR, ids["recent"], [], [], [], NOW)
    assert store.purge(NOW, RETENTION) == {"events": 1, "rejects": 0, "outbox": 0, "slack_messages": 0}
    assert insert_ids(store) == ["at-cutoff", "recent"]
    assert store.purge(NOW, RETENTION) == {"events": 0, "rejects": 0, "outbox": 0, "slack_messages": 0}


def test_purge_keeps_every_event_without_a_cursor(store: Store) -> None:
    store.events.add([make_event("old", CUTOFF - timedelta(days=10))], [], NOW)

    assert store.purge(NOW, RETENTION)["events"] == 0
    assert insert_ids(store) == ["old"]


def test_purge_waits_for_the_slowest_cursor(store: Store) -> None:
    store.events.add([make_event(f"old-{n}", CUTOFF - timedelta(days=1)) for n in range(3)], [], NOW)
    ids = ids_of(store)
    store.grouping.commit("fast", ids["old-2"], [], [], [], NOW)
    store.grouping.commit("slow", ids["old-0"], [], [], [], NOW)

    assert store.purge(NOW, RETENTION)["events"] == 1
    assert insert_ids(store) == ["old-1", "old-2"]


def test_purge_compares_instants_not_wall_clocks(store: Store) -> None:
    # Wall clocks say the opposite of the instants: 01:00+02:00 on the cutoff day is 23:00 UTC the
    # day before (old), 20:00-05:00 the day before is 01:00 UTC on the cutoff day (recent).
    before = (CUTOFF - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))
    after = (CUTOFF + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5)))
    assert before < CUTOFF < after
    assert before.replace(tzinfo=None) > CUTOFF.replace(tzinfo=None) > after.replace(tzinfo=None)
    store.events.add([make_event("before", before), make_event("after", after)], [], NOW)
    store.grouping.commit(CURSOR, max(ids_of(store).values()), [], [], [], NOW)

    assert store.purge(NOW, RETENTION)["events"] == 1
    assert insert_ids(store) == ["after"]


def test_purge_deletes_old_rejects(store: Store) -> None:
    store.events.add([], [Reject("not_json", "old", b"1", "old")], CUTOFF - timedelta(seconds=1))
    store.events.add([], [Reject("not_json", "edge", b"2", "edge")], CUTOFF)
    store.events.add([], [Reject("not_json", "new", b"3", "new")], NOW)

    assert store.purge(NOW, RETENTION) == {"events": 0, "rejects": 1, "outbox": 0, "slack_messages": 0}
    assert [r.message_id for r in store.events.rejects()] == ["new", "edge"]


def test_purge_deletes_old_delivered_outbox_rows_only(store: Store) -> None:
    long_ago = CUTOFF - timedelta(days=5)
    store.grouping.commit(
        CURSOR,
        0,
        [],
        [],
        [note("delivered-old"), note("undelivered-old"), note("delivered-recently"), note("edge")],
        long_ago,
    )
    store.grouping.commit(CURSOR, 0, [], [], [note("new")], NOW)
    ids = {item.group_id: item.id for item in store.outbox.pending()}
    store.outbox.mark_delivered([ids["delivered-old"]], long_ago + timedelta(minutes=1))
    store.outbox.mark_delivered([ids["edge"]], CUTOFF)
    store.outbox.mark_delivered([ids["delivered-recently"]], NOW - timedelta(minutes=1))

    assert store.purge(NOW, RETENTION) == {"events": 0, "rejects": 0, "outbox": 1, "slack_messages": 0}

    assert [item.group_id for item in store.outbox.pending()] == ["undelivered-old", "new"]
    with store.db.engine.connect() as conn:
        left = conn.execute(sa.text("SELECT group_id FROM outbox ORDER BY id")).scalars().all()
    assert left == ["undelivered-old", "delivered-recently", "edge", "new"]


def test_purge_returns_counts_for_everything_at_once(store: Store) -> None:
    old = CUTOFF - timedelta(days=1)
    store.events.add([make_event("e1", old), make_event("e2", old)], [Reject("x", "y", b"z")], old)
    store.events.add([make_event("e3", NOW)], [], NOW)
    store.grouping.commit(CURSOR, max(ids_of(store).values()), [], [], [note("g")], old)
    store.outbox.mark_delivered([item.id for item in store.outbox.pending()], old)

    assert store.purge(NOW, RETENTION) == {"events": 2, "rejects": 1, "outbox": 1, "slack_messages": 0}
    assert insert_ids(store) == ["e3"]
    assert store.events.reject_count() == 0
    assert store.outbox.pending() == []


def test_events_after_a_purge_are_still_seen_by_the_cursor(store: Store) -> None:
    """Ids never go back, even when a purge empties the table (SQLite needs AUTOINCREMENT for that)."""
    old = CUTOFF - timedelta(days=1)
    store.events.add([make_event(f"old-{n}", old) for n in range(3)], [], old)
    position = max(ids_of(store).values())
    store.grouping.commit(CURSOR, position, [], [], [], old)

    assert store.purge(NOW, RETENTION)["events"] == 3
    assert insert_ids(store) == []

    store.events.add([make_event("fresh", NOW)], [], NOW)
    [(fresh_id, fresh)] = store.events.read(position, 10)
    assert fresh.insert_id == "fresh"
    assert fresh_id > position


# -- UTCDateTime --------------------------------------------------------------------------------


def test_utc_datetime_refuses_naive_datetimes(store: Store) -> None:
    naive = datetime(2026, 1, 1, 12, 0)  # naive on purpose
    dialect = store.db.engine.dialect

    with pytest.raises(ValueError, match="naive datetime"):
        UTCDateTime().process_bind_param(naive, dialect)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        store.events.add([make_event("e")], [], naive)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        store.events.add([make_event("naive-ts", naive)], [], T0)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        store.grouping.commit(CURSOR, 5, [group("g")], [], [note("g")], naive)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        store.purge(naive, RETENTION)

    assert event_count(store) == 0
    assert store.grouping.cursor(CURSOR) == 0
    assert store.grouping.load() == []
    assert store.outbox.pending() == []


def test_utc_datetime_stores_aware_datetimes_as_utc(store: Store) -> None:
    column = UTCDateTime()
    dialect = store.db.engine.dialect
    tokyo = datetime(2026, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=9)))

    assert column.process_bind_param(tokyo, dialect) == datetime(2026, 1, 1, 0, 0)
    assert column.process_bind_param(None, dialect) is None
    assert column.process_result_value(datetime(2026, 1, 1, 0, 0), dialect) == T0
    assert column.process_result_value(None, dialect) is None

    store.events.add([], [Reject("x", "y", b"z")], tokyo)
    [reject] = store.events.rejects()
    assert reject.received_at == T0
    assert reject.received_at.tzinfo is UTC


# -- concurrency --------------------------------------------------------------------------------

BATCHES = 20
PER_BATCH = 5


def writer_batches(name: str) -> list[list[PolicyEvent]]:
    """`BATCHES` batches of distinct events, each also carrying insert_ids the other writer sends."""
    return [
        [make_event(f"{name}-{b}-{n}", T0 + timedelta(seconds=b)) for n in range(PER_BATCH)]
        + [make_event(f"shared-{b}", T0), make_event(f"shared-{(b + 1) % BATCHES}", T0)]
        for b in range(BATCHES)
    ]


def test_concurrent_writers_store_each_event_once_in_cursor_order(db_url: str, store: Store) -> None:
    writers = {name: writer_batches(name) for name in ("a", "b")}
    expected = {event.insert_id for batches in writers.values() for batch in batches for event in batch}
    sent = sum(len(batch) for batches in writers.values() for batch in batches)
    assert len(expected) == 2 * BATCHES * PER_BATCH + BATCHES
    start = threading.Barrier(3, timeout=60)
    writing = threading.Event()
    writing.set()

    def write(batches: list[list[PolicyEvent]]) -> list[IngestResult]:
        own = Store(db_url)  # a store per writer, as two replicas would have
        try:
            start.wait()
            return [own.events.add(batch, [], T0) for batch in batches]
        finally:
            own.close()

    def follow() -> list[tuple[int, PolicyEvent]]:
        """Reads like the grouping cursor while the writers run: `id > position`, then move on."""
        seen: list[tuple[int, PolicyEvent]] = []
        position = 0
        start.wait()
        while True:
            done = not writing.is_set()  # read once more after the writers have finished
            while rows := store.events.read(position, 7):
                seen.extend(rows)
                position = rows[-1][0]
            if done:
                return seen

    with ThreadPoolExecutor(max_workers=3) as pool:
        follower = pool.submit(follow)
        futures = [pool.submit(write, batches) for batches in writers.values()]
        try:
            flat = [result for future in futures for result in future.result(timeout=120)]
        finally:
            writing.clear()  # let the follower finish even when a writer failed
        seen = follower.result(timeout=120)

    assert sum(r.stored for r in flat) == len(expected)
    assert sum(r.duplicates for r in flat) == sent - len(expected)
    assert sorted(insert_ids(store)) == sorted(expected)
    assert event_count(store) == len(expected)

    rows = all_events(store)
    row_ids = [row_id for row_id, _ in rows]
    assert all(a < b for a, b in itertools.pairwise(row_ids))
    assert {event.insert_id for _, event in rows} == expected

    # The follower never stepped over an id that committed late: it saw every event, once.
    assert [row_id for row_id, _ in seen] == row_ids
    assert len({event.insert_id for _, event in seen}) == len(seen) == len(expected)


# -- rows the database refuses ---------------------------------------------------------------------


def test_a_row_the_database_refuses_does_not_sink_its_batch(store: Store) -> None:
    """PostgreSQL refuses NUL in text; SQLite takes it. Either way nothing is lost or raised."""
    batch = [make_event("good-1"), make_event("nul", namespace="pay\x00ments"), make_event("good-2")]
    result = store.events.add(batch, [], T0)
    stored = set(insert_ids(store))
    refused = [r for r in store.events.rejects() if r.code == "store_refused"]
    assert {"good-1", "good-2"} <= stored
    assert len(stored) + len(refused) == 3
    assert result.stored == len(stored)
    assert result.rejected == len(refused)
    if store.db.is_sqlite:
        assert refused == []
    else:
        assert b'"insert_id":"nul"' in refused[0].raw
        assert "database refused" in refused[0].reason


def test_a_redelivered_junk_message_is_kept_once(store: Store) -> None:
    junk = Reject("not_json", "the message is not JSON", b"{", message_id="4711")
    assert store.events.add([], [junk], T0).rejected == 1
    assert store.events.add([], [junk, junk], T0 + timedelta(seconds=10)).rejected == 0  # redelivered
    # Without a message id (a replayed file) nothing can tell two copies apart: both are kept.
    anonymous = Reject("not_json", "the message is not JSON", b"{")
    assert store.events.add([], [anonymous, anonymous], T0).rejected == 2
    assert store.events.reject_count() == 3


def test_an_event_the_database_refuses_is_kept_once_across_redeliveries(store: Store) -> None:
    refused = make_event("nul", namespace="pay\x00ments")
    if store.db.is_sqlite:  # SQLite stores NUL characters: the event itself is deduplicated
        assert store.events.add([refused], [], T0) == IngestResult(1, 0, 0)
        assert store.events.add([refused], [], T0) == IngestResult(0, 1, 0)
        return
    assert store.events.add([refused], [], T0).rejected == 1
    assert store.events.add([refused], [], T0 + timedelta(seconds=10)) == IngestResult(0, 0, 0)
    [kept] = store.events.rejects()
    assert (kept.code, kept.message_id) == ("store_refused", None)


def test_a_lease_has_one_holder_until_it_expires(store: Store) -> None:
    ttl = timedelta(seconds=15)
    assert store.leases.hold("grouping", "a", T0, ttl) == "taken"
    assert store.leases.hold("grouping", "b", T0 + timedelta(seconds=5), ttl) is None
    assert store.leases.hold("grouping", "a", T0 + timedelta(seconds=10), ttl) == "renewed"  # to 25 s
    assert store.leases.hold("grouping", "b", T0 + timedelta(seconds=20), ttl) is None
    assert store.leases.hold("grouping", "b", T0 + timedelta(seconds=26), ttl) == "taken"  # a died
    store.leases.release("grouping", "b")
    assert store.leases.hold("grouping", "a", T0 + timedelta(seconds=27), ttl) == "taken"
    # a lapse of one's own lease is a take too: someone may have held it in between
    assert store.leases.hold("grouping", "a", T0 + timedelta(seconds=60), ttl) == "taken"


def test_grouping_commits_only_while_its_fence_holds_the_lease(store: Store) -> None:
    """A leader that stalled past its lease must not overwrite its successor's groups."""
    ttl = timedelta(seconds=15)
    stalled, successor = Fence("alerts", "a"), Fence("alerts", "b")
    assert store.leases.hold("alerts", "a", T0, ttl)
    assert store.leases.holds(stalled, T0)
    store.grouping.commit(CURSOR, 5, [group("g1", 1)], [], [note("g1")], T0, stalled)

    later = T0 + timedelta(seconds=20)
    assert not store.leases.holds(stalled, later)  # expired, even before anyone takes over
    with pytest.raises(LeaseLost, match="no longer holds the 'alerts' lease"):
        store.grouping.commit(CURSOR, 7, [group("g1", 99)], [], [note("g1", "update")], later, stalled)
    assert store.leases.hold("alerts", "b", later, ttl)
    store.grouping.commit(CURSOR, 9, [group("g1", 2)], [], [note("g1", "update")], later, successor)
    with pytest.raises(LeaseLost):
        store.grouping.commit(CURSOR, 7, [group("g1", 99)], [], [note("g1", "update")], later, stalled)

    assert store.grouping.cursor(CURSOR) == 9
    assert store.grouping.load() == [group("g1", 2)]
    assert [item.kind for item in store.outbox.pending()] == ["alert_post", "alert_edit"]
    assert store.leases.holds(successor, later)
    assert not store.leases.holds(stalled, later)


def test_a_delivery_recorded_after_the_lease_lapsed_is_refused(store: Store) -> None:
    """The stale replica's Slack call went out, but its successor owns the group's message now."""
    ttl = timedelta(seconds=15)
    stalled, successor = Fence("alerts", "a"), Fence("alerts", "b")
    store.leases.hold("alerts", "a", T0, ttl)
    store.grouping.commit(CURSOR, 1, [], [], [note("g1", "open")], T0, stalled)
    [item] = store.outbox.pending()
    later = T0 + timedelta(seconds=20)
    store.leases.hold("alerts", "b", later, ttl)
    store.outbox.complete([item.id], later, message=("g1", "C1", "1.000200"), fence=successor)
    with pytest.raises(LeaseLost):
        store.outbox.complete([item.id], later, message=("g1", "C1", "1.000100"), fence=stalled)
    assert store.outbox.message_for("g1") == ("C1", "1.000200")
    assert store.outbox.backlog() == 0


def test_a_single_refused_event_becomes_a_reject_too(store: Store) -> None:
    """At low traffic a bad event often arrives alone; it must not be nacked forever either."""
    result = store.events.add([make_event("lonely", namespace="pay\x00ments")], [], T0)
    assert result.stored + result.rejected == 1


def test_stored_times_are_the_text_and_values_sqlalchemy_writes(store: Store) -> None:
    """SQLite rows go to the driver as tuples: their datetimes must still be written as
    SQLAlchemy's SQLite DATETIME writes them (other queries compare them as text), in UTC."""
    local = timezone(timedelta(hours=2))
    received = datetime(2026, 3, 4, 7, 8, 9, 5, tzinfo=local)
    store.events.add([make_event("text-1", datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))], [], received)
    with store.db.connect() as conn:
        row = conn.execute(sa.select(events.c.received_at, events.c.timestamp)).one()
        if store.db.is_sqlite:
            raw = conn.exec_driver_sql("SELECT received_at, timestamp FROM events").one()
            assert tuple(raw) == ("2026-03-04 05:08:09.000005", "2026-03-04 05:06:07.000000")
    assert tuple(row) == (received.astimezone(UTC), datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))


def test_a_naive_datetime_is_refused_on_the_fast_path_too(store: Store) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        store.events.add([make_event("naive-1")], [], datetime(2026, 3, 4))


@pytest.mark.parametrize(("scratch", "synchronous"), [(False, 2), (True, 0)])
def test_only_a_scratch_sqlite_store_skips_fsync(tmp_path: Any, scratch: bool, synchronous: int) -> None:
    """A commit is what allows the Pub/Sub ack, so the bot's store syncs (FULL = 2); replay's
    temporary store acks nothing and does not (OFF = 0)."""
    store = Store(f"sqlite:///{tmp_path / 'netlog.db'}", scratch=scratch)
    try:
        with store.db.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == synchronous
    finally:
        store.close()
