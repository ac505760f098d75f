"""Ingest against the real Pub/Sub emulator: thousands of entries with redeliveries and junk, stopped
mid-stream and restarted, on SQLite and PostgreSQL. Every valid entry is stored exactly once, junk
is kept as rejects, every message is acked, and a failing store loses nothing."""

from __future__ import annotations

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
    store: Store, path: str, store_batch: Callable[[Sequence[RawMessage]], object] | None = None
) -> Subscriber:
    received_at = datetime(2026, 2, 1, 12, 5, tzinfo=UTC)
    ingest = Subscriber(
        path,
        store_batch or (lambda batch: store_messages(store, batch, PARSER, received_at)),
        max_outstanding=300,
        batch_size=100,
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
