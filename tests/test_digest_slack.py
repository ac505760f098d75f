"""The digest through the real parts: `netlog-bot run` processes (the Pub/Sub emulator in front, the
fake Slack behind, signed slash commands), configured with digest channels and an hourly schedule.

- At start the leading replica sends each channel its digest of the last whole hour, with the chart
  in its thread; two replicas on one PostgreSQL send it once, and neither a takeover nor a restart
  sends it again.
- `/netlog digest` previews the digest to whoever asks (ephemeral), the asking channel's when it
  gets digests; `digest now` is for operators, posts it in the channel and is audited.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bot.adapters.store import Store
from tests.bot_process import CONFIG, Bot, answers, text, until
from tests.fakes.slack import FakeSlack
from tests.logentries import encoded
from tests.pubsub_support import PROJECT, publish

DIGEST_CONFIG = (
    CONFIG
    + """
digest: {schedule: "0 * * * *", timezone: Europe/Berlin, channels: [C0PAY, C0WEB]}
slack: {default_channel: C0WEB, audit_channel: C0AUDIT}
"""
).replace("slack: {default_channel: C0WEB}\n", "", 1)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C0PAY", "payments-oncall")
        fake.add_channel("C0WEB", "web-team")
        fake.add_channel("C0AUDIT", "netlog-audit")
        yield fake


def digests_in(slack: FakeSlack, channel: str) -> list[str]:
    return [m.ts for m in slack.messages(channel) if m.text.startswith("Network policy digest")]


def slash(bot: Bot, slack: FakeSlack, user: str, words: str, name: str) -> int:
    form = {
        "token": "legacy",
        "team_id": "T0TEAM",
        "channel_id": "C0PAY",
        "user_id": user,
        "command": "/netlog",
        "text": words,
        "response_url": slack.response_url(name),
        "trigger_id": "1.2.3",
    }
    return bot.post_signed(urlencode(form).encode())


def test_two_replicas_on_postgresql_send_each_channel_one_digest_with_its_chart(
    tmp_path: Path, slack: FakeSlack, subscription: tuple[str, str], pg_schema_url: str
) -> None:
    bots = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        bot = Bot(folder, slack, subscription[1], DIGEST_CONFIG)
        bot.env["NETLOG_DB_URL"] = pg_schema_url
        bots.append(bot)
    try:
        for bot in bots:
            bot.start()
        until(
            lambda: all(len(slack.files(c)) == 1 for c in ("C0PAY", "C0WEB")), 40, "both digests and charts"
        )
        leader = next(b for b in bots if "this replica groups and delivers alerts" in b.text())
        follower = next(b for b in bots if b is not leader)
        assert leader.stop(signal.SIGTERM) == 0  # releases the lease: the other takes over
        until(lambda: "this replica groups and delivers alerts" in follower.text(), 40, "the takeover")
        time.sleep(3)  # its jobs ran at takeover: the digest job found nothing left to send
        for channel in ("C0PAY", "C0WEB"):
            (ts,) = digests_in(slack, channel)
            (chart,) = slack.files(channel)
            assert chart.thread_ts == ts
        store = Store(pg_schema_url)
        try:
            assert store.outbox.backlog() == 0
        finally:
            store.close()
    finally:
        for bot in bots:
            bot.kill()


@pytest.fixture
def bot(tmp_path: Path, slack: FakeSlack, subscription: tuple[str, str]) -> Iterator[Bot]:
    running = Bot(tmp_path, slack, subscription[1], DIGEST_CONFIG)
    running.start()
    yield running
    running.kill()


def test_a_preview_for_anyone_and_digest_now_for_operators(
    bot: Bot, slack: FakeSlack, subscription: tuple[str, str]
) -> None:
    until(lambda: len(digests_in(slack, "C0PAY")) == 1, 30, "the start's digest", bot)
    publish(subscription[0], [encoded(source="web", count=3, project=PROJECT) for _ in range(4)])
    until(lambda: len(slack.messages("C0PAY")) == 2, 30, "the alert", bot)

    assert slash(bot, slack, "U0READER", "digest since=2h", "preview") == 200
    [preview] = answers(slack, "preview")
    assert preview["response_type"] == "ephemeral"
    assert "At least 12 denied attempts in 1 flow" in text(preview)
    assert "`checkout/web` → `payments/api` :443/tcp" in text(preview)
    assert "including the current hour so far" in text(preview)

    assert slash(bot, slack, "U0READER", "digest now", "refused") == 200
    [refused] = answers(slack, "refused")
    assert "digest-now" in text(refused)
    assert len(digests_in(slack, "C0PAY")) == 1

    assert slash(bot, slack, "U0OPS", "digest now", "posted") == 200
    [posted] = answers(slack, "posted")
    assert "Posting the digest of" in text(posted)
    until(lambda: len(digests_in(slack, "C0PAY")) == 2, 30, "the digest posted now", bot)
    until(lambda: len(slack.files("C0PAY")) == 2, 30, "its chart", bot)
    until(
        lambda: any("posted the digest of" in m.text for m in slack.messages("C0AUDIT")),
        30,
        "the audit line",
        bot,
    )

    assert slash(bot, slack, "U0READER", "digest since=soon", "bad") == 200
    [bad] = answers(slack, "bad")
    assert "`since=soon` is not a duration" in text(bad)

    # A restart runs the digest job again at start: the hour's digest is not sent twice.
    assert bot.stop(signal.SIGTERM) == 0
    bot.start()
    until(lambda: bot.text().count("this replica groups and delivers alerts") == 2, 40, "the restart", bot)
    time.sleep(3)
    assert len(digests_in(slack, "C0PAY")) == 2  # the start's and the one posted now
    assert len(digests_in(slack, "C0WEB")) == 1
