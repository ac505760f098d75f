"""The leader engine on its own, on SQLite and PostgreSQL, with a real SlackGateway against the fake
Slack server and an explicit clock: taking and renewing the alerts lease, idling while another
replica holds it, reloading after a lapse (nothing folded twice), fenced writes refused after a
lapse, delivery and drain stopping at a lost lease, and scheduled jobs that run only on the leader.
Also the job runner itself (`bot.jobs`), on a short interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bot.adapters.slack import SlackGateway, make_client
from bot.adapters.store import Fence, Store
from bot.core.events import NetworkNames, RawMessage
from bot.core.grouping import Grouper, GroupingPolicy
from bot.core.outbox import AlertEdit, AlertPost
from bot.core.routing import Route, RoutingTable
from bot.engine import ALERTS_LEASE, LEASE_TTL, Engine
from bot.jobs import Jobs, retention_jobs
from bot.pipeline import GroupingWorker, entry_parser, store_messages
from tests.clock import T0, ManualClock
from tests.fakes.slack import FakeSlack
from tests.logentries import raw_message
from tests.store_queries import event_count

POLICY = GroupingPolicy(group_wait=timedelta(0), group_interval=timedelta(seconds=1))
LAPSE = LEASE_TTL.total_seconds() + 1
ROUTING = RoutingTable((Route((("namespace", "payments"),), "C0PAY"),), "#alerts")

PARSER = entry_parser(NetworkNames())


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C0PAY", "payments-oncall")
        yield fake


class Replica:
    """One replica's engine, with its own clock and jobs (one job that records each run)."""

    def __init__(self, store: Store, slack: FakeSlack, name: str) -> None:
        self.clock = ManualClock()
        self.ran = threading.Event()
        self.jobs = Jobs().every(timedelta(hours=1), "probe", self.ran.set)
        gateway = SlackGateway(make_client(slack.token, slack.base_url))
        self.engine = Engine(store, Grouper(POLICY, ROUTING), gateway, self.clock, self.jobs, name)


@pytest.fixture
def replica(store: Store, slack: FakeSlack) -> Iterator[Replica]:
    built = Replica(store, slack, "replica")
    yield built
    built.jobs.stop()


def deny(count: int) -> RawMessage:
    return raw_message(at=T0, count=count)


def notification_kinds(store: Store) -> list[str]:
    """The kinds of the alert notifications queued, oldest first."""
    messages = [item.message for item in store.outbox.pending()]
    return [m.notification.kind for m in messages if isinstance(m, AlertPost | AlertEdit)]


def totals(store: Store) -> list[int]:
    return [group.total for group in store.grouping.load()]


def successor_round(replica: Replica, store: Store, messages: list[RawMessage]) -> None:
    """Another replica takes the lapsed lease, groups new events, and goes away (a rollout)."""
    at = replica.clock() + timedelta(seconds=LAPSE)
    assert store.leases.hold(ALERTS_LEASE, "successor", at, LEASE_TTL) == "taken"
    successor = GroupingWorker(store, Grouper(POLICY, ROUTING), fence=Fence(ALERTS_LEASE, "successor"))
    store_messages(store, messages, PARSER, at)
    successor.step(at)  # past group_interval: the successor announces the new count
    store.leases.release(ALERTS_LEASE, "successor")
    replica.clock.advance(LAPSE)


def test_the_first_round_takes_the_lease_and_groups(store: Store, replica: Replica) -> None:
    store_messages(store, [deny(3)], PARSER, replica.clock())
    replica.engine.group()
    assert replica.engine.leading
    assert store.leases.holds(replica.engine.fence, replica.clock())
    assert totals(store) == [3]
    assert notification_kinds(store) == ["open"]


def test_rounds_say_when_a_backlog_is_left_so_the_loop_goes_on_at_once(
    store: Store, replica: Replica
) -> None:
    store_messages(store, [deny(1) for _ in range(5)], PARSER, replica.clock())
    replica.engine.worker.batch_size = 2
    assert [replica.engine.group() for _ in range(4)] == [True, True, False, False]
    assert totals(store) == [5]
    assert store.leases.holds(replica.engine.fence, replica.clock())


def test_later_rounds_renew_the_lease_without_reloading(
    store: Store, replica: Replica, caplog: pytest.LogCaptureFixture
) -> None:
    replica.engine.group()
    for _ in range(3):  # 30 s in all: longer than the TTL, held without a break
        replica.clock.advance(10)
        replica.engine.group()
    assert replica.engine.leading
    assert store.leases.holds(replica.engine.fence, replica.clock() + LEASE_TTL - timedelta(seconds=1))
    assert "reloaded the groups" not in caplog.text


def test_a_replica_idles_while_another_holds_the_lease(
    store: Store, replica: Replica, slack: FakeSlack
) -> None:
    assert store.leases.hold(ALERTS_LEASE, "other", replica.clock(), LEASE_TTL) == "taken"
    store_messages(store, [deny(3)], PARSER, replica.clock())
    replica.engine.group()
    replica.engine.deliver()
    assert not replica.engine.leading
    assert totals(store) == []
    assert store.grouping.cursor("grouping") == 0
    assert slack.calls_to("chat.postMessage") == []
    assert not replica.jobs.running


def test_a_replica_whose_lease_lapsed_reloads_before_it_groups_again(store: Store, replica: Replica) -> None:
    engine = replica.engine
    store_messages(store, [deny(3)], PARSER, replica.clock())
    engine.group()
    assert engine.leading
    assert totals(store) == [3]

    successor_round(replica, store, [deny(4)])
    assert totals(store) == [7]

    engine.group()  # the stalled replica wakes up and finds the lease free
    assert engine.leading
    assert totals(store) == [7]  # not 11: the 4 were not folded a second time
    assert engine.worker.position == store.grouping.cursor("grouping")
    # One open (the replica's), one update (the successor's), not a second update for the same 4.
    assert notification_kinds(store) == ["open", "update"]


def test_a_round_whose_lease_lapsed_midway_commits_nothing(store: Store, replica: Replica) -> None:
    """The replica renews the lease, then stalls past it while reading events; a successor takes over
    meanwhile. The round's commit is fenced: refused, and the replica stops leading."""
    engine = replica.engine
    store_messages(store, [deny(3)], PARSER, replica.clock())
    engine.group()
    store_messages(store, [deny(4)], PARSER, replica.clock())
    replica.clock.advance(2)  # the round renews the lease until now + TTL, then stalls past that
    takeover_while_reading_events(store, at=replica.clock() + timedelta(seconds=LAPSE))

    engine.group()

    assert not engine.leading
    assert totals(store) == [3]
    assert not replica.jobs.running
    assert store.leases.holds(Fence(ALERTS_LEASE, "successor"), replica.clock())


def takeover_while_reading_events(store: Store, at: datetime) -> None:
    """The next read of the events table lets "successor" take the alerts lease first, as if the
    reader had stalled there past the lease's TTL."""
    armed = [True]

    def stall(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if armed[0] and "FROM events" in statement:
            armed[0] = False
            assert store.leases.hold(ALERTS_LEASE, "successor", at, LEASE_TTL) == "taken"

    sa.event.listen(store.db.engine, "before_cursor_execute", stall)


def test_delivery_stops_at_a_lost_lease(store: Store, replica: Replica, slack: FakeSlack) -> None:
    engine = replica.engine
    store_messages(store, [deny(3)], PARSER, replica.clock())
    engine.group()
    replica.clock.advance(LAPSE)
    assert store.leases.hold(ALERTS_LEASE, "successor", replica.clock(), LEASE_TTL) == "taken"

    engine.deliver()

    assert not engine.leading
    assert slack.calls_to("chat.postMessage") == []
    assert store.outbox.backlog() == 1  # for the successor to send
    assert not replica.jobs.running


def test_a_drain_stops_at_a_lapsed_lease(
    store: Store, replica: Replica, caplog: pytest.LogCaptureFixture
) -> None:
    store_messages(store, [deny(3)], PARSER, replica.clock())
    replica.engine.group()
    successor_round(replica, store, [deny(4)])
    store_messages(store, [deny(5)], PARSER, replica.clock())

    replica.engine.drain(until=0)

    assert totals(store) == [7]  # the 5 wait for the next leader, who folds them once
    assert "lease lapsed while draining" in caplog.text


def test_a_drain_whose_time_is_up_leaves_the_backlog_to_the_next_leader(
    store: Store, replica: Replica, caplog: pytest.LogCaptureFixture
) -> None:
    """A backlog larger than the drain's time stays stored (the next leader folds it once) rather
    than keeping the process past its grace period, when Kubernetes would kill it mid-step."""
    replica.engine.group()  # leads
    store_messages(store, [deny(1) for _ in range(5)], PARSER, replica.clock())
    replica.engine.worker.batch_size = 2

    replica.engine.drain(until=0)  # the time is up already: one step, then it stops

    assert totals(store) == [2]
    assert "events left to fold; the next leader folds them" in caplog.text
    replica.engine.drain(until=time.monotonic() + 10)
    assert totals(store) == [5]


def test_jobs_run_only_on_the_leader_and_stop_when_it_loses_the_lease(store: Store, slack: FakeSlack) -> None:
    first, second = Replica(store, slack, "first"), Replica(store, slack, "second")
    try:
        first.engine.group()
        second.engine.group()
        assert first.jobs.running
        assert first.ran.wait(5)  # each job runs at start, then every period
        assert not second.jobs.running
        assert not second.ran.is_set()

        second.clock.advance(LAPSE)  # the first stalls past its lease; the second takes over
        second.engine.group()
        first.clock.advance(LAPSE + 1)
        first.engine.group()
        assert second.jobs.running
        assert second.ran.wait(5)
        assert not first.engine.leading
        assert not first.jobs.running
    finally:
        first.jobs.stop()
        second.jobs.stop()


def test_a_stopping_leader_drains_to_slack_stops_its_jobs_and_lets_go(
    store: Store, replica: Replica, slack: FakeSlack
) -> None:
    store_messages(store, [deny(3)], PARSER, replica.clock())
    replica.engine.start()
    deadline = time.monotonic() + 10
    while not replica.engine.leading and time.monotonic() < deadline:
        time.sleep(0.05)
    assert replica.engine.leading

    replica.engine.stop(time.monotonic() + 25)

    assert store.outbox.backlog() == 0
    [message] = slack.messages("C0PAY")
    assert "at least 3 denied attempts" in message.blocks[2]["text"]["text"]
    assert not replica.jobs.running
    assert store.leases.hold(ALERTS_LEASE, "next", replica.clock(), LEASE_TTL) == "taken"


def test_jobs_run_at_start_then_every_period_until_stopped() -> None:
    runs: list[float] = []
    jobs = Jobs().every(timedelta(milliseconds=100), "tick", lambda: runs.append(time.monotonic()))
    jobs.start()
    try:
        deadline = time.monotonic() + 5
        while len(runs) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        jobs.stop()
    assert len(runs) >= 3
    count = len(runs)
    time.sleep(0.3)
    assert len(runs) == count  # stopped means stopped
    jobs.start()  # and a stopped runner starts again (the lease can come back)
    try:
        deadline = time.monotonic() + 5
        while len(runs) == count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(runs) > count
    finally:
        jobs.stop()


def test_the_retention_job_purges_what_the_grouping_consumed(store: Store, slack: FakeSlack) -> None:
    replica = Replica(store, slack, "replica")
    store_messages(store, [deny(3)], PARSER, replica.clock())
    replica.engine.group()
    replica.clock.advance(timedelta(days=8).total_seconds())
    jobs = retention_jobs(store, timedelta(days=7), timedelta(days=90), replica.clock)
    jobs.start()
    try:
        deadline = time.monotonic() + 5
        while event_count(store) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        jobs.stop()
        replica.jobs.stop()
    assert event_count(store) == 0
