"""`netlog-bot run` end to end: the real emulator -> the bot as a subprocess -> a fake Slack.

A burst for one namespace gives one message, then edits, then thread replies for new flows; two
namespaces go to two channels; a SIGKILL mid-storm and a restart keep editing the same message
without losing counts; a 60 s Slack outage (503s, then 429s) delays alerts but loses and
duplicates nothing. Slack requests to the bot are signed like Slack signs them."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.fakes.slack import FakeSlack, Message
from tests.pubsub_support import PROJECT, publish

SECRET = "signing-secret-for-tests"
CONFIG = """
slack: {default_channel: C0WEB}
grouping: {group_wait: 2s, group_interval: 2s, resolve_after: 10m}
pubsub: {lease_extension: 10s}
routes:
  - {match: {namespace: "payments*"}, channel: "#payments-oncall"}
"""
_serial = iter(range(1_000_000))


def deny(source: str, namespace: str = "payments", count: int = 1) -> bytes:
    at = datetime.now(UTC) - timedelta(seconds=10)
    return json.dumps(
        {
            "insertId": f"run-{next(_serial)}",
            "logName": f"projects/{PROJECT}/logs/policy-action",
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            "resource": {
                "type": "k8s_node",
                "labels": {"project_id": PROJECT, "cluster_name": "prod", "node_name": "n1"},
            },
            "jsonPayload": {
                "connection": {"dest_port": 8080, "protocol": "tcp", "direction": "ingress"},
                "disposition": "deny",
                "src": {"pod_name": f"{source}-6d9f8b7c5d-x7k2p", "namespace": "checkout"},
                "dest": {"pod_name": "api-7b78d7c957-zkn54", "namespace": namespace},
                "count": count,
            },
        }
    ).encode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Bot:
    """The bot as its users run it: a process with env vars and a config file."""

    def __init__(
        self, tmp_path: Path, slack: FakeSlack, subscription: str, config_text: str = CONFIG
    ) -> None:
        config = tmp_path / "netlog.yaml"
        config.write_text(config_text, encoding="utf-8")
        self.port = free_port()
        self.db = tmp_path / "netlog.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("NETLOG_", "SLACK_"))}
        self.env.update(
            {
                "NETLOG_CONFIG": str(config),
                "NETLOG_DB_URL": f"sqlite:///{self.db}",
                "NETLOG_SUBSCRIPTION": subscription,
                "GOOGLE_CLOUD_PROJECT": PROJECT,
                "SLACK_BOT_TOKEN": slack.token,
                "SLACK_SIGNING_SECRET": SECRET,
                "NETLOG_SLACK_API_URL": slack.base_url,
                "NETLOG_HTTP_PORT": str(self.port),
            }
        )
        self.log = tmp_path / "bot.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Bot:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=self.env, stderr=log)
        until(lambda: self.get("/healthz")[0] == 200, 30, "the bot to answer /healthz", self)
        return self

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read()
        except OSError:
            return 0, b""

    def post_signed(
        self,
        body: bytes,
        *,
        timestamp: int | None = None,
        secret: str = SECRET,
        elapsed: list[float] | None = None,
    ) -> int:
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        signature = (
            "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
        )
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/slack/events",
            data=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": signature,
            },
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        finally:
            if elapsed is not None:
                elapsed.append(time.monotonic() - started)

    def run_to_exit(self, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`netlog-bot run` expected to stop on its own (a start-up failure), with its output."""
        return subprocess.run(
            [sys.executable, "-m", "bot", "run"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def kill(self) -> None:
        """Test teardown: whatever the test left running goes."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, signum: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def state(self) -> str:
        """What the store holds, for a failure message: were counts lost before or after storing?"""
        try:
            with closing(sqlite3.connect(self.db, timeout=5)) as db:
                events, attempts = db.execute(
                    "SELECT count(*), coalesce(sum(count), 0) FROM events"
                ).fetchone()
                cursors = dict(db.execute("SELECT name, position FROM cursors").fetchall())
                backlog = db.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NULL").fetchone()[0]
        except sqlite3.Error as error:
            return f"store unreadable: {error}"
        return f"store: {events} events, {attempts} attempts, cursors {cursors}, outbox backlog {backlog}"


def until(condition: Callable[[], bool], timeout: float, what: str, bot: Bot | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out waiting for {what}"
                + (f"\n{bot.state()}\n--- bot log ---\n{bot.text()[-4000:]}" if bot else "")
            )
        time.sleep(0.2)


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
