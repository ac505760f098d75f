"""Ingest against the real Pub/Sub emulator: thousands of entries with redeliveries and junk, stopped
mid-stream and restarted, on SQLite and PostgreSQL. Every valid entry is stored exactly once, junk
is kept as rejects, every message is acked, and a failing store loses nothing.

At storm speed too: a large batch with duplicates, a store that fails after committing half a
batch, a store that never succeeds (nothing is acked), a store slower than the ack deadline (leases
are extended, nothing comes back twice), and a stop while batches are held (drained and acked)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from bot.adapters.pubsub import Subscriber, SubscriptionError
from bot.adapters.store import Store
from bot.core.events import NetworkNames, RawMessage
from bot.pipeline import entry_parser, store_messages
from tests.pubsub_support import ACK_DEADLINE, JUNK, PROJECT, numbered_entry, publish, wait_for
from tests.store_queries import event_count, insert_ids, total_attempts

PARSER = entry_parser(NetworkNames())


def start_ingest(
    store: Store,
    path: str,
    store_batch: Callable[[Sequence[RawMessage]], object] | None = None,
    batch_size: int = 100,
) -> Subscriber:
    received_at = datetime(2026, 2, 1, 12, 5, tzinfo=UTC)
    ingest = Subscriber(
        path,
        store_batch or (lambda batch: store_messages(store, batch, PARSER, received_at)),
        max_outstanding=300 if batch_size <= 100 else 10 * batch_size,
        batch_size=batch_size,
        lease_seconds=ACK_DEADLINE,
    )
    ingest.start()
    return ingest


def test_every_entry_stored_once_across_duplicates_junk_and_a_restart(
    store: Store, subscription: tuple[str, str]
) -> None:
    topic, path = subscription
    valid = [numbered_entry(n) for n in range(3000)]
    redelivered = valid[:300]  # the same insertId published again, as Pub/Sub may deliver twice
    publish(topic, valid[:1500] + JUNK + redelivered)

    first = start_ingest(store, path)
    wait_for(lambda: event_count(store) >= 500, store)
    first.stop()  # mid-stream: what it took is stored and acked; what it held is handed back
    partial = event_count(store)
    assert first.acked >= partial >= 500

    publish(topic, valid[1500:] + redelivered)  # published while the bot is down
    second = start_ingest(store, path)
    # Messages the first subscriber held come back when their lease runs out. The emulator keeps
    # handing batches to the closed stream at random, each time costing another lease (10 s), so
    # this usually takes 10-40 s and now and then minutes: hence the generous timeout.
    published = len(valid) + len(JUNK) + 2 * len(redelivered)
    wait_for(lambda: first.acked + second.acked >= published, store, timeout=300)
    acked = second.acked
    time.sleep(ACK_DEADLINE + 2)  # a lost ack would mean a redelivery by now
    second.stop()

    assert second.acked == acked, "messages came back after being acked"
    assert sorted(insert_ids(store)) == [f"ins-{n:06d}" for n in range(3000)]
    assert total_attempts(store) == sum(1 + n % 3 for n in range(3000))
    assert sorted(r.code for r in store.events.rejects()) == [
        "not_json",
        "not_json",
        "not_log_entry",
        "wrong_log",
    ]


def test_a_failing_store_nacks_and_the_batch_comes_back(store: Store, subscription: tuple[str, str]) -> None:
    topic, path = subscription
    publish(topic, [numbered_entry(n) for n in range(50)])
    failures = {"left": 2}

    def flaky(batch: Sequence[RawMessage]) -> object:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database went away")
        return store_messages(store, batch, PARSER, datetime(2026, 2, 1, tzinfo=UTC))

    ingest = start_ingest(store, path, flaky)
    wait_for(lambda: event_count(store) == 50, store, timeout=30)
    ingest.stop()
    assert failures["left"] == 0
    assert event_count(store) == 50


def test_a_missing_subscription_is_an_error_that_says_what_to_do(store: Store, emulator_host: str) -> None:
    ingest = start_ingest(store, f"projects/{PROJECT}/subscriptions/does-not-exist-{uuid.uuid4().hex[:6]}")
    assert ingest.stopped.wait(30)
    with pytest.raises(
        SubscriptionError, match="does not exist: create it with `gcloud pubsub subscriptions create"
    ):
        ingest.wait()
    ingest.stop()


def test_a_large_batch_with_duplicates_is_stored_exactly_once(
    store: Store, subscription: tuple[str, str]
) -> None:
    topic, path = subscription
    valid = [numbered_entry(n) for n in range(5000)]
    duplicates = valid[::10]  # 10%: the same insertIds again, next to the first copy (same batch)
    publish(topic, [copy for n, body in enumerate(valid) for copy in [body] * (2 if n % 10 == 0 else 1)])

    ingest = start_ingest(store, path, batch_size=1000)
    wait_for(lambda: ingest.acked >= len(valid) + len(duplicates), store)
    ingest.stop()

    assert ingest.acked == len(valid) + len(duplicates)
    assert sorted(insert_ids(store)) == [f"ins-{n:06d}" for n in range(5000)]
    assert total_attempts(store) == sum(1 + n % 3 for n in range(5000))


def test_a_store_failing_after_committing_half_a_batch_redelivers_and_counts_exactly(
    store: Store, subscription: tuple[str, str]
) -> None:
    topic, path = subscription
    publish(topic, [numbered_entry(n) for n in range(2000)])
    received_at = datetime(2026, 2, 1, tzinfo=UTC)
    failures = {"left": 3}

    def half_then_fail(batch: Sequence[RawMessage]) -> object:
        if failures["left"]:
            failures["left"] -= 1
            store_messages(store, batch[: len(batch) // 2], PARSER, received_at)  # committed
            raise ConnectionError("database went away before the rest of the batch")
        return store_messages(store, batch, PARSER, received_at)

    ingest = start_ingest(store, path, half_then_fail)
    wait_for(lambda: event_count(store) == 2000 and failures["left"] == 0, store)
    ingest.stop()

    assert failures["left"] == 0
    assert sorted(insert_ids(store)) == [f"ins-{n:06d}" for n in range(2000)]
    assert total_attempts(store) == sum(1 + n % 3 for n in range(2000))


def test_nothing_is_acked_while_the_store_refuses(store: Store, subscription: tuple[str, str]) -> None:
    topic, path = subscription
    publish(topic, [numbered_entry(n) for n in range(500)])
    attempts = threading.Event()

    def down(batch: Sequence[RawMessage]) -> object:
        attempts.set()
        raise ConnectionError("database is down")

    failing = start_ingest(store, path, down)
    assert attempts.wait(30)
    time.sleep(2)  # a few more rounds of pull, fail, nack
    failing.stop()
    assert failing.acked == 0

    # Nacked, not acked: every message comes back to a subscriber whose store works.
    working = start_ingest(store, path)
    wait_for(lambda: working.acked >= 500, store)
    working.stop()
    assert working.acked == 500
    assert event_count(store) == 500


def test_a_store_slower_than_the_ack_deadline_gets_nothing_twice(
    store: Store, subscription: tuple[str, str]
) -> None:
    topic, path = subscription
    publish(topic, [numbered_entry(n) for n in range(300)])
    received_at = datetime(2026, 2, 1, tzinfo=UTC)
    slow = {"first": True}

    def slow_first_batch(batch: Sequence[RawMessage]) -> object:
        if slow["first"]:
            slow["first"] = False
            time.sleep(ACK_DEADLINE * 1.5)  # held past the subscription's deadline: only leases keep it
        return store_messages(store, batch, PARSER, received_at)

    ingest = start_ingest(store, path, slow_first_batch)
    wait_for(lambda: ingest.acked >= 300, store)
    time.sleep(ACK_DEADLINE + 2)  # anything whose lease lapsed would have come back by now
    ingest.stop()

    assert ingest.acked == 300, "a message was delivered twice: its lease was not extended"
    assert event_count(store) == 300


def test_stop_stores_and_acks_everything_it_pulled(store: Store, subscription: tuple[str, str]) -> None:
    topic, path = subscription
    publish(topic, [numbered_entry(n) for n in range(3000)])
    received_at = datetime(2026, 2, 1, tzinfo=UTC)

    def slowly(batch: Sequence[RawMessage]) -> object:
        time.sleep(0.3)  # batches pile up in memory while this one is stored
        return store_messages(store, batch, PARSER, received_at)

    first = start_ingest(store, path, slowly)
    wait_for(lambda: event_count(store) > 0, store)
    first.stop()
    assert event_count(store) == first.acked  # what it pulled is stored, and what is stored is acked
    assert first.acked < 3000

    second = start_ingest(store, path)
    wait_for(lambda: event_count(store) == 3000, store, timeout=120)
    time.sleep(1)
    second.stop()
    assert second.acked == 3000 - first.acked, "a message acked by the first subscriber came back"
    assert sorted(insert_ids(store)) == [f"ins-{n:06d}" for n in range(3000)]
