"""The scheduled digest on a controllable clock, on SQLite and PostgreSQL: the schedule's local
times (DST-correct), one digest per channel and period however often the job runs, a period
missed while the bot was down sent once and marked late, two replicas racing sending one; and its
delivery to the fake Slack: the text digest, then the chart in its thread, an upload failure
leaving the text in place and retried once later."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.adapters.slack import SlackGateway, make_client
from bot.adapters.store import Fence, Store
from bot.core.events import NetworkNames
from bot.core.grouping import Grouper, GroupingPolicy
from bot.core.routing import Route, RoutingTable
from bot.delivery import CHART_RETRY, Delivery
from bot.jobs import cron_trigger, last_fires
from bot.pipeline import GroupingWorker, entry_parser, store_messages
from bot.services.digest import Digests, ScheduledDigests
from tests.clock import ManualClock
from tests.fakes.slack import FakeSlack
from tests.logentries import raw_message

BERLIN = "Europe/Berlin"
#: Monday 4 May 2026, 09:00 in Berlin (CEST, UTC+2).
NINE = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ROUTING = RoutingTable((Route((("namespace", "payments"),), "C0PAY"),), "C0WEB")
CHANNELS = ("C0PAY", "C0WEB")


def fill(store: Store, at: datetime) -> None:
    messages = [raw_message(at=at - timedelta(hours=h), count=2) for h in range(1, 6)]
    messages.append(raw_message(at=at - timedelta(hours=3), namespace="shop"))
    store_messages(store, messages, entry_parser(NetworkNames()), at)
    GroupingWorker(store, Grouper(GroupingPolicy(), ROUTING)).catch_up(at)


def job(store: Store, clock: ManualClock, fence: Fence | None = None) -> ScheduledDigests:
    return ScheduledDigests(
        Digests(store, ROUTING, CHANNELS),
        lambda now: last_fires("0 9 * * *", BERLIN, now),
        clock,
        timezone=BERLIN,
        fence=fence,
    )


def queued(store: Store) -> list[tuple[str, datetime, datetime, bool]]:
    posts = [item.message for item in store.outbox.pending(100) if item.kind == "digest_post"]
    return [(p.channel, p.digest.period.start, p.digest.period.end, p.digest.late) for p in posts]  # type: ignore[union-attr]


def test_the_schedule_fires_at_the_local_time_across_dst() -> None:
    trigger = cron_trigger("0 9 * * 1-5", BERLIN)
    # Friday 27 March 2026 09:00 CET is 08:00 UTC; the next weekday, Monday 30 March, is CEST.
    assert trigger.get_next_fire_time(None, datetime(2026, 3, 27, 7, tzinfo=UTC)) == datetime(
        2026, 3, 27, 9, tzinfo=trigger.timezone
    )
    fires = last_fires("0 9 * * 1-5", BERLIN, datetime(2026, 3, 30, 12, tzinfo=UTC))
    assert fires == [datetime(2026, 3, 27, 8, tzinfo=UTC), datetime(2026, 3, 30, 7, tzinfo=UTC)]
    # Saturday to Monday over the change: 71 hours, not 72.
    assert last_fires("0 9 * * *", BERLIN, datetime(2026, 3, 29, 7, 30, tzinfo=UTC)) == [
        datetime(2026, 3, 28, 8, tzinfo=UTC),
        datetime(2026, 3, 29, 7, tzinfo=UTC),
    ]


def test_each_channel_gets_the_period_once_however_often_the_job_runs(store: Store) -> None:
    fill(store, NINE)
    clock = ManualClock(NINE + timedelta(seconds=30))
    assert job(store, clock).run() == 2
    assert queued(store) == [("C0PAY", NINE - DAY, NINE, False), ("C0WEB", NINE - DAY, NINE, False)]
    clock.advance(timedelta(hours=3))
    assert job(store, clock).run() == 0  # a restart's catch-up run, a second replica: nothing new
    (pay, web) = [item.message for item in store.outbox.pending(100)]
    assert pay.digest.attempts == 10  # type: ignore[union-attr]
    assert web.digest.attempts == 1  # type: ignore[union-attr]


def test_a_period_missed_while_down_is_sent_once_late_and_older_ones_not_at_all(store: Store) -> None:
    fill(store, NINE)
    # Down from Sunday to Wednesday 11:00: Monday's, Tuesday's and Wednesday's digests were missed.
    clock = ManualClock(NINE + 2 * DAY + timedelta(hours=2))
    assert job(store, clock).run() == 2
    assert queued(store) == [
        ("C0PAY", NINE + DAY, NINE + 2 * DAY, True),
        ("C0WEB", NINE + DAY, NINE + 2 * DAY, True),
    ]
    assert job(store, clock).run() == 0


def test_two_replicas_racing_queue_one_digest_per_channel(db_url: str) -> None:
    first, second = Store(db_url), Store(db_url)
    first.migrate()
    try:
        fill(first, NINE)
        clock = ManualClock(NINE + timedelta(minutes=1))
        results: list[int] = []
        start = threading.Barrier(2)

        def run(store: Store) -> None:
            start.wait()
            results.append(job(store, clock).run())

        threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(results) == 2
        assert sorted(c for c, *_ in queued(first)) == ["C0PAY", "C0WEB"]
    finally:
        first.close()
        second.close()


def test_a_replica_that_lost_the_lease_queues_nothing(store: Store) -> None:
    fill(store, NINE)
    clock = ManualClock(NINE + timedelta(minutes=1))
    store.leases.hold("alerts", "other", clock(), timedelta(seconds=15))
    assert job(store, clock, Fence("alerts", "me")).run() == 0  # logged, not raised: the job stays
    assert queued(store) == []


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C0PAY", "payments-oncall")
        fake.add_channel("C0WEB", "web")
        yield fake


def test_delivery_posts_the_digest_then_its_chart_in_the_thread(store: Store, slack: FakeSlack) -> None:
    fill(store, NINE)
    clock = ManualClock(NINE + timedelta(seconds=30))
    job(store, clock).run()
    delivery = Delivery(store, SlackGateway(make_client(slack.token, slack.base_url)), clock)
    for _ in range(4):
        delivery.deliver_due()
        clock.advance(2)
    (message,) = slack.messages("C0PAY")
    assert message.text.startswith("Network policy digest: at least 10 denied attempts")
    assert "Network policy digest — Sun 03 May 09:00 – Mon 04 May 09:00 CEST" in str(message.blocks)
    (chart,) = slack.files("C0PAY")
    assert chart.thread_ts == message.ts
    assert chart.content is not None
    assert chart.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert store.outbox.backlog() == 0


def test_a_failed_chart_upload_leaves_the_text_and_is_tried_once_more_later(
    store: Store, slack: FakeSlack
) -> None:
    fill(store, NINE)
    clock = ManualClock(NINE + timedelta(seconds=30))
    job(store, clock).run()
    delivery = Delivery(store, SlackGateway(make_client(slack.token, slack.base_url)), clock)
    slack.error_next("files.getUploadURLExternal", "internal_error", count=2)
    for _ in range(6):
        delivery.deliver_due()
        clock.advance(2)
    assert len(slack.messages("C0PAY")) == 1
    assert len(slack.messages("C0WEB")) == 1
    assert slack.files("C0PAY") == []
    assert store.outbox.backlog() == 2  # the two charts wait for their second try
    clock.advance(CHART_RETRY)
    for _ in range(4):
        delivery.deliver_due()
        clock.advance(2)
    assert len(slack.files("C0PAY")) == 1
    assert len(slack.files("C0WEB")) == 1
    assert store.outbox.backlog() == 0


def test_a_chart_that_fails_twice_is_given_up_and_the_channel_goes_on(store: Store, slack: FakeSlack) -> None:
    fill(store, NINE)
    clock = ManualClock(NINE + timedelta(seconds=30))
    job(store, clock).run()
    delivery = Delivery(store, SlackGateway(make_client(slack.token, slack.base_url)), clock)
    slack.error_next("files.getUploadURLExternal", "internal_error", count=10)
    for _ in range(3):
        for _ in range(4):
            delivery.deliver_due()
            clock.advance(2)
        clock.advance(CHART_RETRY)
    assert [len(slack.messages(c)) for c in CHANNELS] == [1, 1]
    assert slack.files("C0PAY") == []
    assert store.outbox.backlog() == 0
