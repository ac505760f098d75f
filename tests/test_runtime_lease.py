"""The alerts lease inside `netlog-bot run`'s Runtime: a replica whose lease lapsed (it stalled)
reloads from the store before it groups again, even if it was the leader before and no one else
holds the lease now, so it never folds the same events twice; a drain stops at a lapse."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.adapters.store import Fence, Store
from bot.app import ALERTS_LEASE, LEASE_TTL, Runtime, drain, utcnow
from bot.core.events import NetworkNames, RawMessage
from bot.core.grouping import Grouper
from bot.pipeline import GroupingWorker, store_messages
from bot.settings import load_settings
from tests.fakes.slack import FakeSlack
from tests.test_run_e2e import deny as log_entry
from tests.test_run_e2e import free_port

CONFIG = "slack: {default_channel: C0WEB}\ngrouping: {group_wait: 0s, group_interval: 1s}\n"


def deny(count: int) -> RawMessage:
    return RawMessage(log_entry("web", count=count))


@pytest.fixture
def runtime(tmp_path: Path, db_url: str) -> Iterator[Runtime]:
    config = tmp_path / "netlog.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with FakeSlack() as slack:
        slack.add_channel("C0WEB", "web-team")
        settings = load_settings(
            {
                "NETLOG_CONFIG": str(config),
                "NETLOG_DB_URL": db_url,
                "NETLOG_SUBSCRIPTION": "projects/p/subscriptions/never-started",
                "SLACK_BOT_TOKEN": slack.token,
                "SLACK_SIGNING_SECRET": "secret",
                "NETLOG_SLACK_API_URL": slack.base_url,
                "NETLOG_HTTP_PORT": free_port(),
            }
        )
        built = Runtime(settings)  # not started: the test drives its rounds itself
        yield built
        built.server.stop()
        built.store.close()


def totals(store: Store) -> list[int]:
    return [group.total for group in store.grouping.load()]


def successor_round(runtime: Runtime, store: Store, messages: list[RawMessage]) -> None:
    """Another replica takes the lapsed lease, groups new events, and goes away (a rollout)."""
    store.leases.release(ALERTS_LEASE, runtime.holder)  # as good as expired, without waiting 15 s
    assert store.leases.hold(ALERTS_LEASE, "successor", utcnow(), LEASE_TTL) == "taken"
    grouper = Grouper(runtime.worker.grouper.policy, runtime.worker.grouper.routing)
    successor = GroupingWorker(store, grouper, fence=Fence(ALERTS_LEASE, "successor"))
    store_messages(store, messages, NetworkNames(), utcnow())
    time.sleep(1.1)  # past group_interval: the successor announces the new count
    successor.step(utcnow())
    store.leases.release(ALERTS_LEASE, "successor")


def test_a_replica_whose_lease_lapsed_reloads_before_it_groups_again(runtime: Runtime) -> None:
    store = runtime.store
    store_messages(store, [deny(3)], NetworkNames(), utcnow())
    runtime.group()
    assert runtime.leading
    assert totals(store) == [3]

    successor_round(runtime, store, [deny(4)])
    assert totals(store) == [7]

    runtime.group()  # the stalled replica wakes up and finds the lease free
    assert runtime.leading
    assert totals(store) == [7]  # not 11: the 4 were not folded a second time
    assert runtime.worker.position == store.grouping.cursor("grouping")
    # One open (the replica's), one update (the successor's), not a second update for the same 4.
    assert [item.kind for item in store.outbox.pending()] == ["alert_post", "alert_edit"]


def test_a_drain_stops_at_a_lapsed_lease(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    store = runtime.store
    store_messages(store, [deny(3)], NetworkNames(), utcnow())
    runtime.group()
    successor_round(runtime, store, [deny(4)])
    store_messages(store, [deny(5)], NetworkNames(), utcnow())

    drain(runtime.worker, runtime.delivery, store, until=0)

    assert totals(store) == [7]  # the 5 wait for the next leader, who folds them once
    assert "lease lapsed while draining" in caplog.text
