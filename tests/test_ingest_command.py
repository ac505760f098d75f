"""`netlog-bot ingest` as a user runs it: a subprocess pulling from the real emulator into a store,
stopped with SIGTERM (as Kubernetes does) and SIGINT (Ctrl-C): it drains, exits 0, loses nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.adapters.store import Store
from tests.environment import scrubbed
from tests.pubsub_support import ACK_DEADLINE, JUNK, PROJECT, numbered_entry, publish, wait_for
from tests.store_queries import event_count, insert_ids, total_attempts


def start_ingest(
    db_url: str, subscription: str, env_extra: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    env = scrubbed()
    env.update(
        {"NETLOG_DB_URL": db_url, "NETLOG_SUBSCRIPTION": subscription, "GOOGLE_CLOUD_PROJECT": PROJECT}
    )
    env.update(env_extra or {})
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "ingest"], env=env, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_ingest_drains_and_exits_cleanly_on_a_signal(
    signum: signal.Signals, store: Store, subscription: tuple[str, str]
) -> None:
    topic, path = subscription
    publish(topic, [numbered_entry(n) for n in range(400)] + JUNK)
    process = start_ingest(store.url, path.rsplit("/", 1)[-1])  # a short name, with GOOGLE_CLOUD_PROJECT
    try:
        wait_for(
            lambda: event_count(store) == 400 and store.events.reject_count() == len(JUNK), store, timeout=60
        )
        started = time.monotonic()
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=25)
        assert time.monotonic() - started < 25
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "ingest: stopped after acking" in stderr
    # The junk left a trace: the first message of each reason, said at once.
    assert "(not_json): the message is not JSON" in stderr
    assert "(wrong_log): logName 'projects/p/logs/kubelet' is not a policy-action log" in stderr
    assert "`netlog-bot rejects` lists them" in stderr


def test_ingest_names_the_missing_subscription(db_url: str, emulator_host: str, tmp_path: Path) -> None:
    process = start_ingest(db_url, "no-such-subscription")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "projects/test-project/subscriptions/no-such-subscription does not exist" in stderr


def test_ingest_killed_mid_storm_loses_and_double_counts_nothing(
    store: Store, subscription: tuple[str, str]
) -> None:
    """SIGKILL while batches are being pulled, stored and acked (several in flight), on SQLite and
    PostgreSQL: what was committed stays, what was not is redelivered after the ack deadline, and
    the dedupe on insertId keeps every count exact."""
    topic, path = subscription
    entries = 30_000
    publish(topic, [numbered_entry(n) for n in range(entries)])
    expected_attempts = sum(1 + n % 3 for n in range(entries))
    process = start_ingest(store.url, path)
    try:
        wait_for(lambda: event_count(store) >= 1_000, store, timeout=60)
    finally:
        process.kill()
        process.communicate(timeout=10)
    assert event_count(store) < entries, "ingest finished before it was killed: nothing was in flight"
    restarted = start_ingest(store.url, path)
    try:
        wait_for(lambda: event_count(store) == entries, store, timeout=120)
        time.sleep(ACK_DEADLINE + 2)  # anything the killed process held has come back by now
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.communicate(timeout=25)
    assert event_count(store) == entries
    assert len(set(insert_ids(store))) == entries
    assert total_attempts(store) == expected_attempts
