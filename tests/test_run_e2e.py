"""`netlog-bot run` end to end: the real emulator -> the bot as a subprocess -> a fake Slack.

A burst for one namespace gives one message, then edits, then thread replies for new flows; two
namespaces go to two channels; a SIGKILL mid-storm and a restart keep editing the same message
without losing counts; a 60 s Slack outage (503s, then 429s) delays alerts but loses and
duplicates nothing. Slack requests to the bot are signed like Slack signs them."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.bot_process import Bot, until
from tests.fakes.slack import FakeSlack, Message
from tests.logentries import encoded
from tests.pubsub_support import PROJECT, publish


def deny(source: str, namespace: str = "payments", count: int = 1) -> bytes:
    """A deny from checkout/`source` to `namespace`/api:8080, ten seconds ago."""
    return encoded(source=source, namespace=namespace, count=count, prefix="run-", port=8080, project=PROJECT)


def total(message: Message) -> int:
    match = re.search(r"at least ([\d,]+) denied attempt", message.blocks[2]["text"]["text"])
    assert match, message.blocks
    return int(match.group(1).replace(",", ""))


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C0PAY", "payments-oncall")
        fake.add_channel("C0WEB", "web-team")
        yield fake


@pytest.fixture
def bot(tmp_path: Path, slack: FakeSlack, subscription: tuple[str, str]) -> Iterator[Bot]:
    running = Bot(tmp_path, slack, subscription[1])
    yield running
    running.kill()


def test_burst_gives_one_message_then_edits_then_thread_replies(
    bot: Bot, slack: FakeSlack, subscription: tuple[str, str]
) -> None:
    topic = subscription[0]
    bot.start()
    publish(topic, [deny("web", count=5) for _ in range(40)] + [deny("web", namespace="shop")])
    until(
        lambda: len(slack.messages("C0PAY")) == 1 and len(slack.messages("C0WEB")) == 1, 30, "two alerts", bot
    )
    publish(topic, [deny("web", count=5) for _ in range(10)] + [deny("batch", count=3)])
    until(lambda: total(slack.messages("C0PAY")[0]) == 253, 30, "the edit with every count", bot)
    [alert] = slack.messages("C0PAY")
    assert alert.edits >= 1
    until(lambda: len(slack.replies("C0PAY", alert.ts)) == 1, 20, "the new flow in the thread", bot)
    assert "checkout/batch" in slack.replies("C0PAY", alert.ts)[0].blocks[0]["text"]["text"]
    assert total(slack.messages("C0WEB")[0]) == 1
    assert len(slack.messages("C0PAY")) == 1
    assert bot.stop() == 0
    assert "run: stopped" in bot.text()
    assert "WARNING" not in bot.text()  # a clean run logs nothing that looks like trouble


def test_signed_requests_only(bot: Bot) -> None:
    bot.start()
    payload = {
        "type": "block_actions",
        "user": {"id": "U1"},
        "team": {"id": "T0TEAM"},
        "actions": [{"action_id": "netlog_open_logs", "type": "button", "block_id": "b", "action_ts": "1"}],
        "response_url": "http://127.0.0.1:9/none",
        "trigger_id": "t",
        "container": {"type": "message"},
        "channel": {"id": "C0PAY"},
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    assert bot.post_signed(body) == 200
    assert bot.post_signed(body, secret="not-the-secret") == 401
    assert bot.post_signed(body, timestamp=int(time.time()) - 600) == 401
    status, health = bot.get("/healthz")
    assert status == 200
    assert json.loads(health)["status"] == "ok"
    assert bot.stop() == 0


def test_sigkill_mid_storm_keeps_editing_the_same_message_and_loses_no_counts(
    bot: Bot, slack: FakeSlack, subscription: tuple[str, str]
) -> None:
    topic = subscription[0]
    bot.start()
    publish(topic, [deny("web", count=2) for _ in range(100)])
    until(lambda: len(slack.messages("C0PAY")) == 1, 30, "the first alert", bot)
    publish(topic, [deny("web", count=2) for _ in range(100)])
    assert bot.stop(signal.SIGKILL) == -signal.SIGKILL
    publish(topic, [deny("web", count=2) for _ in range(100)] + [deny("late", count=7)])
    bot.start()
    # The killed replica's lease (15 s) and the messages it held both have to run out first. The
    # emulator never notices that the killed process's stream is gone: it hands each batch to it or
    # to the live one at random (about 2 in 3 to the dead one, measured), and a batch given to the
    # dead stream comes back a lease extension (10 s here) later. Usually 10-40 s, rarely 100+.
    until(lambda: total(slack.messages("C0PAY")[0]) == 607, 360, "every count after the restart", bot)
    [alert] = slack.messages("C0PAY")

    def late_replies() -> int:
        return sum("checkout/late" in r.blocks[0]["text"]["text"] for r in slack.replies("C0PAY", alert.ts))

    until(lambda: late_replies() >= 1, 20, "the late flow in the thread", bot)
    assert "(lease extension 10 s, at most 2000 messages outstanding)" in bot.text()  # pubsub: in the config
    time.sleep(2)
    assert late_replies() == 1
    assert bot.stop() == 0


def test_a_slack_outage_delays_alerts_but_loses_and_duplicates_nothing(
    bot: Bot, slack: FakeSlack, subscription: tuple[str, str]
) -> None:
    topic = subscription[0]
    bot.start()
    publish(topic, [deny("web") for _ in range(10)])
    until(lambda: len(slack.messages("C0PAY")) == 1, 30, "the first alert", bot)
    slack.outage(status=503)
    for second in range(60):
        if second == 30:
            slack.outage(status=429)  # Slack is back, but rate-limits the backlog
        if second % 10 == 0:
            publish(topic, [deny(f"wave{second}", count=3), deny("shop", namespace="shop")])
        time.sleep(1)
    slack.restore()
    until(lambda: total(slack.messages("C0PAY")[0]) == 10 + 6 * 3, 60, "the backlog after the outage", bot)
    until(
        lambda: len(slack.messages("C0WEB")) == 1 and total(slack.messages("C0WEB")[0]) == 6, 30, "shop", bot
    )
    [alert] = slack.messages("C0PAY")

    def announced() -> str:
        return "".join(r.blocks[0]["text"]["text"] for r in slack.replies("C0PAY", alert.ts))

    waves = [f"checkout/wave{second}" for second in range(0, 60, 10)]
    until(lambda: all(wave in announced() for wave in waves), 30, "every new flow in the thread", bot)
    time.sleep(3)  # anything sent twice would show up now
    assert [announced().count(wave) for wave in waves] == [1] * len(waves)
    assert len(slack.messages("C0PAY")) == 1
    statuses = {c.status for c in slack.calls}
    assert {429, 503} <= statuses
    assert bot.stop() == 0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"SLACK_BOT_TOKEN": None}, "SLACK_BOT_TOKEN is not set"),
        ({"SLACK_SIGNING_SECRET": None}, "SLACK_SIGNING_SECRET is not set"),
        ({"SLACK_BOT_TOKEN": "xoxb-revoked"}, "Slack refused SLACK_BOT_TOKEN at auth.test"),
        ({"NETLOG_SUBSCRIPTION": None}, "NETLOG_SUBSCRIPTION is not set"),
        # The network down is not a bad token.
        (
            {"NETLOG_SLACK_API_URL": "http://127.0.0.1:1/api/"},
            "could not reach Slack to check SLACK_BOT_TOKEN",
        ),
    ],
)
def test_startup_fails_fast_with_a_sentence(
    tmp_path: Path, slack: FakeSlack, change: dict[str, str | None], expected: str
) -> None:
    bot = Bot(tmp_path, slack, "netlog-bot")
    for name, value in change.items():
        if value is None:
            bot.env.pop(name)
        else:
            bot.env[name] = value
    result = bot.run_to_exit()
    assert result.returncode == 2
    assert expected in result.stderr
    assert slack.token not in result.stderr


def test_a_port_in_use_is_named(tmp_path: Path, slack: FakeSlack, subscription: tuple[str, str]) -> None:
    bot = Bot(tmp_path, slack, subscription[1])
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", bot.port))
        taken.listen()
        result = bot.run_to_exit()
    assert result.returncode == 2
    assert f"cannot listen on NETLOG_HTTP_PORT={bot.port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_google_credentials_is_said_before_anything_starts(tmp_path: Path, slack: FakeSlack) -> None:
    bot = Bot(tmp_path, slack, "projects/p/subscriptions/netlog-bot")
    bot.env.pop("PUBSUB_EMULATOR_HOST", None)
    bot.env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    bot.env.update(
        {
            "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # no application-default credentials there
            "HOME": str(tmp_path),
            "GCE_METADATA_HOST": "127.0.0.1:1",  # not on GCP: nothing answers as the metadata server
            "GCE_METADATA_IP": "127.0.0.1:1",
        }
    )
    result = bot.run_to_exit()
    assert result.returncode == 2
    assert "no Google credentials were found for Pub/Sub" in result.stderr
    assert "gcloud auth application-default login" in result.stderr
    assert "Traceback" not in result.stderr
    assert slack.calls_to("auth.test") == []  # before Slack was asked


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "garbage",
            "NETLOG_DB_URL 'garbage' is not a database URL: use sqlite:///PATH or postgresql+psycopg://",
        ),
        (
            "mysql://netlog@db/netlog",
            "NETLOG_DB_URL mysql://netlog@db/netlog: not a database this bot supports",
        ),
        ("sqlite:////no/such/folder/netlog.db", "whose folder /no/such/folder does not exist"),
        (
            "postgresql+psycopg://netlog:s3cret@127.0.0.1:1/netlog",
            "could not reach the database at NETLOG_DB_URL (postgresql+psycopg://netlog:***@127.0.0.1:1/netlog)",
        ),
    ],
)
def test_a_store_that_cannot_work_is_a_sentence_before_slack_is_asked(
    tmp_path: Path, slack: FakeSlack, url: str, expected: str
) -> None:
    bot = Bot(tmp_path, slack, "netlog-bot")
    bot.env["NETLOG_DB_URL"] = url
    result = bot.run_to_exit()
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr
    assert slack.calls_to("auth.test") == []
