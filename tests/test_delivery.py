"""Delivery of the outbox to a fake Slack (real HTTP, real WebClient), on SQLite and PostgreSQL:
post then edit in place, coalesced edits, thread replies, pacing, 429/5xx/permanent errors, joins,
deleted messages; a repeat's older message marked "posted again"; a Mute button's mute shown on its
alert (and gone when ended early), each through the outbox. The clock is a manual one: delivery
never reads the real time."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.adapters.slack import SlackGateway, make_client
from bot.adapters.store import Fence, LeaseLost, Store
from bot.core import commands as cmd
from bot.core.audit import AuditEntry
from bot.core.events import NetworkNames, RawMessage
from bot.core.grouping import Grouper, GroupingPolicy, GroupKey
from bot.core.outbox import AuditLine
from bot.core.routing import Route, RoutingTable
from bot.delivery import Delivery
from bot.pipeline import GroupingWorker, entry_parser, store_messages
from bot.render import ids
from bot.render.audit import audit_message
from bot.render.times import slack_time
from bot.services.audit import Auditor
from bot.services.mutes import MuteExpiry, Mutes
from bot.settings import MutesSection
from tests.clock import ManualClock
from tests.fakes.slack import FakeSlack, Message
from tests.logentries import raw_message

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
POLICY = GroupingPolicy(group_wait=timedelta(seconds=10), group_interval=timedelta(seconds=30))
ROUTING = RoutingTable((Route((("namespace", "payments"),), "C0PAY"),), "#alerts")
#: A deny at T0 from checkout/web to payments/api:443, as delivered by Pub/Sub.
entry = functools.partial(raw_message, at=T0, prefix="d")

PARSER = entry_parser(NetworkNames())


class Rig:
    def __init__(self, store: Store, slack: FakeSlack, fence: Fence | None = None) -> None:
        self.store = store
        self.slack = slack
        self.clock = ManualClock(T0)
        self.worker = GroupingWorker(store, Grouper(POLICY, ROUTING), fence=fence)
        gateway = SlackGateway(make_client(slack.token, slack.base_url))
        self.delivery = Delivery(store, gateway, self.clock, fence=fence)

    def deny(self, *messages: RawMessage) -> None:
        store_messages(self.store, list(messages), PARSER, self.clock())
        self.worker.step(self.clock())

    def tick(self, seconds: float = 0) -> int:
        self.clock.advance(seconds)
        self.worker.step(self.clock())
        return self.delivery.deliver_due()

    def settle(self, seconds: float = 120) -> None:
        """Ticks a second at a time for `seconds` (virtual)."""
        for _ in range(int(seconds)):
            self.tick(1)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C0PAY", "payments-oncall")
        fake.add_channel("C0ALERT", "alerts")
        yield fake


@pytest.fixture
def rig(store: Store, slack: FakeSlack) -> Rig:
    return Rig(store, slack)


def totals(slack: FakeSlack, channel: str) -> list[str]:
    return [m.blocks[2]["text"]["text"] for m in slack.messages(channel)]


def test_post_then_edit_in_place_then_thread_reply_then_resolve(rig: Rig, slack: FakeSlack) -> None:
    rig.deny(entry(count=3))
    rig.tick(10)
    [message] = slack.messages("C0PAY")
    assert "at least 3 denied attempts" in message.blocks[2]["text"]["text"]
    rig.deny(entry(count=4), entry(source="batch", count=2))
    rig.settle(40)
    [message] = slack.messages("C0PAY")  # still one message, edited
    assert message.edits == 1
    assert "at least 9 denied attempts, 2 flows" in message.blocks[2]["text"]["text"]
    [reply] = slack.replies("C0PAY", message.ts)
    assert "New flow" in reply.blocks[0]["text"]["text"]
    assert "checkout/batch" in reply.blocks[0]["text"]["text"]
    rig.settle(16 * 60)
    [message] = slack.messages("C0PAY")
    assert "Quiet since" in message.blocks[1]["text"]["text"]
    assert rig.store.outbox.backlog() == 0


def test_edits_piled_up_during_an_outage_are_coalesced(rig: Rig, slack: FakeSlack) -> None:
    rig.deny(entry())
    rig.tick(10)
    slack.outage()
    for minute in range(5):
        rig.deny(entry(source=f"s{minute}", count=10))
        rig.settle(60)
    slack.restore()
    rig.settle(70)
    [message] = slack.messages("C0PAY")
    assert message.edits == 1  # five queued edits, one chat.update
    assert "at least 51 denied attempts, 6 flows" in message.blocks[2]["text"]["text"]
    replies = slack.replies("C0PAY", message.ts)
    announced = "".join(r.blocks[0]["text"]["text"] for r in replies)
    assert all(f"checkout/s{n}" in announced for n in range(5))
    assert announced.count("checkout/s0") == 1


def test_rate_limit_waits_retry_after(rig: Rig, slack: FakeSlack) -> None:
    rig.deny(entry())
    slack.rate_limit_next(1, retry_after=7)
    rig.tick(10)
    assert slack.messages("C0PAY") == []
    rig.tick(6)
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429]
    rig.tick(1.5)
    assert len(slack.messages("C0PAY")) == 1


def test_server_errors_back_off_and_lose_nothing(rig: Rig, slack: FakeSlack) -> None:
    rig.deny(entry(), entry(namespace="web"))
    slack.fail_next(3, status=503)
    rig.settle(30)
    assert len(slack.messages("C0PAY")) == 1
    assert len(slack.messages("C0ALERT")) == 1
    assert rig.store.outbox.backlog() == 0


def test_channel_names_are_resolved_once(rig: Rig, slack: FakeSlack) -> None:
    rig.deny(entry(namespace="web"))
    rig.tick(10)
    rig.deny(entry(namespace="web", source="x"))
    rig.settle(40)
    assert len(slack.messages("C0ALERT")) == 1
    assert len(slack.calls_to("conversations.list")) == 1


def test_the_bot_joins_a_public_channel_it_is_not_in(store: Store) -> None:
    with FakeSlack() as slack:
        slack.add_channel("C0PAY", "payments-oncall", member=False)
        rig = Rig(store, slack)
        rig.deny(entry())
        rig.tick(10)
        assert len(slack.calls_to("conversations.join")) == 1
        assert len(slack.messages("C0PAY")) == 1


def test_a_deleted_alert_is_posted_again(rig: Rig, slack: FakeSlack) -> None:
    rig.deny(entry())
    rig.tick(10)
    [first] = slack.messages("C0PAY")
    slack.delete_message("C0PAY", first.ts)
    rig.deny(entry(count=5))
    rig.settle(40)
    [again] = slack.messages("C0PAY")
    assert again.ts != first.ts
    assert "at least 6 denied attempts" in again.blocks[2]["text"]["text"]
    rig.deny(entry(count=1))
    rig.settle(40)
    assert slack.messages("C0PAY")[0].edits == 1  # later edits go to the new message


def test_a_missing_channel_is_explained_and_retried_later(
    rig: Rig, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    rig.deny(entry(namespace="web"))  # routed to #alerts
    slack.channels.pop("C0ALERT")
    rig.tick(10)
    assert "channel does not exist or the bot cannot see it" in caplog.text
    [item] = rig.store.outbox.pending()
    assert item.channel == "#alerts"
    slack.add_channel("C0ALERT", "alerts")
    rig.settle(4 * 60)
    assert slack.messages("C0ALERT") == []  # waits the permanent-error retry interval
    rig.settle(70)
    assert len(slack.messages("C0ALERT")) == 1


def test_posts_to_one_channel_are_paced_to_one_per_second(store: Store, slack: FakeSlack) -> None:
    rig = Rig(store, slack)
    rig.worker.grouper.policy = GroupingPolicy(
        group_by=("namespace", "source"), group_wait=timedelta(seconds=10)
    )
    rig.deny(*(entry(source=f"w{n}") for n in range(3)))  # three groups, one channel
    rig.tick(10)
    assert len(slack.messages("C0PAY")) == 1
    rig.tick(0.5)
    assert len(slack.messages("C0PAY")) == 1
    rig.tick(0.5)
    assert len(slack.messages("C0PAY")) == 2
    rig.tick(1)
    assert len(slack.messages("C0PAY")) == 3


def test_a_channel_that_piles_up_never_hides_the_others(rig: Rig, slack: FakeSlack) -> None:
    # an undeliverable channel with a long backlog, older than everything else
    line = AuditEntry(T0, "U0OP", "enable", "applied", "x")
    backlog = [AuditLine("#gone", f"a{n}", line) for n in range(1500)]
    rig.store.grouping.commit("filler", 0, [], [], backlog, T0)
    rig.deny(entry())
    rig.settle(12)
    assert len(slack.messages("C0PAY")) == 1


def test_an_edit_slack_refuses_is_sent_as_plain_text_to_the_same_message(rig: Rig, slack: FakeSlack) -> None:
    rig.deny(entry())
    rig.tick(10)
    slack.error_next("chat.update", "invalid_blocks")
    rig.deny(entry(count=4))
    rig.settle(40)
    [message] = slack.messages("C0PAY")  # edited, not posted again
    assert message.edits == 1
    assert message.blocks == []
    assert "at least 5 denied attempts" in message.text


def test_a_replica_that_lost_the_alerts_lease_neither_folds_nor_sends(store: Store, slack: FakeSlack) -> None:
    """Two replicas, one lease: the one that stalled past it stops before touching Slack or groups."""
    ttl = timedelta(seconds=15)
    stalled = Rig(store, slack, Fence("alerts", "a"))
    assert store.leases.hold("alerts", "a", stalled.clock(), ttl)
    stalled.deny(entry(count=3))
    stalled.tick(10)
    [message] = slack.messages("C0PAY")
    calls = len(slack.calls)

    successor = Rig(store, slack, Fence("alerts", "b"))
    successor.clock.advance(30)
    assert store.leases.hold("alerts", "b", successor.clock(), ttl)
    successor.worker.reload()
    store_messages(store, [entry(count=4)], PARSER, successor.clock())
    stalled.clock.advance(30)
    with pytest.raises(LeaseLost):
        stalled.worker.step(stalled.clock())  # would count the 4 too, beside the successor
    assert store.outbox.backlog() == 0
    successor.tick(0)  # folds the 4; the update waits for group_interval
    successor.clock.advance(30)
    assert store.leases.hold("alerts", "b", successor.clock(), ttl)  # renewed, as every tick does
    successor.worker.step(successor.clock())
    assert store.outbox.backlog() == 1
    with pytest.raises(LeaseLost):
        stalled.delivery.deliver_due()
    assert len(slack.calls) == calls
    assert successor.delivery.deliver_due() == 1
    [message] = slack.messages("C0PAY")
    assert "at least 7 denied attempts" in message.blocks[2]["text"]["text"]


def test_an_audit_line_is_rendered_when_it_is_sent(rig: Rig, slack: FakeSlack) -> None:
    slack.add_channel("C0AUDIT", "netlog-audit")
    entry = AuditEntry(T0, "U0OP", "enable", "applied", "/netlog enable prod-eu", "prod-eu", "off", "on")
    rig.store.outbox.enqueue(AuditLine("#netlog-audit", "1", entry), T0)
    assert rig.tick() == 1
    [message] = slack.messages("C0AUDIT")
    assert message.text == audit_message(entry).text
    assert message.blocks == audit_message(entry).blocks
    assert rig.store.outbox.backlog() == 0


def repeating(rig: Rig) -> Rig:
    """The rig with groups posted afresh after 3 minutes still active."""
    policy = replace(POLICY, repeat_interval=timedelta(minutes=3))
    rig.worker = GroupingWorker(rig.store, Grouper(policy, ROUTING))
    return rig


def test_a_repeat_marks_the_older_message_as_posted_again(rig: Rig, slack: FakeSlack) -> None:
    repeating(rig)
    rig.deny(entry())
    rig.tick(10)
    [first] = slack.messages("C0PAY")
    assert first.blocks[1]["text"]["text"] == ":red_circle: *Active*"
    for _ in range(3):
        rig.deny(entry(count=2))
        rig.settle(60)
    slack.outage(methods={"chat.update"})  # the marking waits in the outbox like any call
    rig.deny(entry(count=2))
    rig.settle(60)
    assert rig.store.outbox.pending()[0].kind == "alert_superseded"
    slack.restore()
    rig.settle(70)
    older, newer = slack.messages("C0PAY")
    assert older.ts == first.ts
    state = older.blocks[1]["text"]["text"]
    assert state.startswith(":arrow_down: *Posted again* <!date^")
    assert "the newer message below is kept up to date, not this one" in state
    assert "(posted again)" in older.text
    assert newer.blocks[1]["text"]["text"] == ":red_circle: *Active*"
    assert rig.store.outbox.backlog() == 0
    edits = older.edits
    rig.deny(entry(count=2))
    rig.settle(60)
    assert slack.messages("C0PAY")[0].edits == edits  # later edits go to the newer message
    assert slack.messages("C0PAY")[1].edits >= 1


def test_a_repeat_of_a_deleted_message_marks_nothing(rig: Rig, slack: FakeSlack) -> None:
    repeating(rig)
    rig.deny(entry())
    rig.tick(10)
    [first] = slack.messages("C0PAY")
    slack.delete_message("C0PAY", first.ts)
    for _ in range(4):
        rig.deny(entry(count=2))
        rig.settle(60)
    assert len(slack.messages("C0PAY")) >= 1
    assert rig.store.outbox.backlog() == 0  # the marking of a deleted message is done, not retried


def mute_button_value(message: Message) -> str:
    actions = next(b for b in message.blocks if b["type"] == "actions")
    return str(next(e["value"] for e in actions["elements"] if e["action_id"] == ids.MUTE_1H))


def test_a_mute_from_the_button_shows_on_the_alert_until_it_ends(rig: Rig, slack: FakeSlack) -> None:
    mutes = Mutes(rig.store, Auditor(rig.store, None), MutesSection(), rig.clock)
    rig.deny(entry())
    rig.tick(10)
    [message] = slack.messages("C0PAY")
    mutes.mute_alert("U0OP", mute_button_value(message), timedelta(hours=1), "C0PAY")
    assert [item.kind for item in rig.store.outbox.pending()] == ["alert_redraw"]  # paced like the rest
    rig.tick(1)
    [message] = slack.messages("C0PAY")
    until = rig.clock() + timedelta(hours=1) - timedelta(seconds=1)
    assert message.blocks[1]["text"]["text"] == f":mute: *Muted* by <@U0OP> until {slack_time(until)}"
    assert "(muted)" in message.text
    assert message.edits == 1

    [mute] = rig.store.mutes.active(rig.clock())
    mutes.unmute("U0OP", cmd.Unmute(mute.id), f"unmute {mute.id}")
    rig.tick(1)
    [message] = slack.messages("C0PAY")
    assert message.blocks[1]["text"]["text"] == ":red_circle: *Active*"  # ended early: no longer says muted


def test_a_mute_that_runs_out_is_taken_off_its_alert(rig: Rig, slack: FakeSlack) -> None:
    mutes = Mutes(rig.store, Auditor(rig.store, None), MutesSection(), rig.clock)
    expiry = MuteExpiry(rig.store, rig.clock)
    rig.deny(entry())
    rig.tick(10)
    mutes.mute_alert("U0OP", mute_button_value(slack.messages("C0PAY")[0]), timedelta(hours=1), "C0PAY")
    rig.tick(1)
    assert slack.messages("C0PAY")[0].blocks[1]["text"]["text"].startswith(":mute: *Muted*")
    assert expiry.run() == 0  # still running: nothing to redraw
    rig.settle(16 * 60)  # resolved while muted: the quiet alert says it is muted, until when
    assert ":mute: *Muted*" in slack.messages("C0PAY")[0].blocks[1]["text"]["text"]
    assert expiry.run() == 0
    rig.clock.advance(timedelta(minutes=45).total_seconds())  # the hour is up; nothing else happens
    assert ":mute: *Muted*" in slack.messages("C0PAY")[0].blocks[1]["text"]["text"]
    assert expiry.run() == 1
    rig.tick(1)
    [message] = slack.messages("C0PAY")
    state = message.blocks[1]["text"]["text"]  # quiet by now, and no "Muted … until" a past time
    assert state.startswith(":large_green_circle: *Quiet since*")
    assert ":mute:" not in state
    assert expiry.run() == 0  # redrawn once


def test_a_muted_alert_says_so_when_it_resolves(rig: Rig, slack: FakeSlack) -> None:
    mutes = Mutes(rig.store, Auditor(rig.store, None), MutesSection(), rig.clock)
    rig.deny(entry())
    rig.tick(10)
    mutes.mute_alert("U0OP", mute_button_value(slack.messages("C0PAY")[0]), timedelta(hours=1), "C0PAY")
    rig.settle(16 * 60)
    [message] = slack.messages("C0PAY")
    quiet, muted = message.blocks[1]["text"]["text"].split("\n")
    assert quiet.startswith(":large_green_circle: *Quiet since* <!date^")
    assert muted.startswith(":mute: *Muted* by <@U0OP> until <!date^")


def test_a_mute_of_an_alert_never_posted_queues_nothing(rig: Rig) -> None:
    mutes = Mutes(rig.store, Auditor(rig.store, None), MutesSection(), rig.clock)
    key = GroupKey("C0PAY", 0, (("cluster", "prod-eu"), ("namespace", "payments"))).encode()
    mutes.mute_alert("U0OP", key, timedelta(hours=1), "C0PAY")
    assert rig.store.outbox.pending() == []


def test_a_mute_on_an_alerts_labels_shows_on_it_and_one_on_other_fields_does_not(
    rig: Rig, slack: FakeSlack
) -> None:
    mutes = Mutes(rig.store, Auditor(rig.store, None), MutesSection(), rig.clock)
    rig.deny(entry(), entry(namespace="web"))
    rig.tick(10)
    rig.tick(1)
    mutes.mute("U0OP", cmd.Mute((("dest_port", "443"),), timedelta(hours=2)))  # some denies, maybe
    assert rig.store.outbox.pending() == []
    mutes.mute("U0OP", cmd.Mute((("namespace", "pay*"),), timedelta(hours=2), "deploy"))
    assert [item.channel for item in rig.store.outbox.pending()] == ["C0PAY"]  # not #alerts (web)
    rig.tick(1)
    [payments] = slack.messages("C0PAY")
    assert payments.blocks[1]["text"]["text"].startswith(":mute: *Muted* by <@U0OP> until <!date^")
    [web] = slack.messages("C0ALERT")
    assert web.blocks[1]["text"]["text"] == ":red_circle: *Active*"
