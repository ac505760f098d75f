"""`netlog-bot run` as a process, for the tests that start it: `Bot` (env vars, a config file, signed
requests, the store's state for a failure message), `until` a condition holds, and the answers the
fake Slack received on a response_url."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.environment import scrubbed
from tests.fakes.slack import FakeSlack
from tests.pubsub_support import PROJECT

SECRET = "signing-secret-for-tests"
CONFIG = """
slack: {default_channel: C0WEB}
grouping: {group_wait: 2s, group_interval: 2s, resolve_after: 10m}
pubsub: {lease_extension: 10s}
routes:
  - {match: {namespace: "payments*"}, channel: "#payments-oncall"}
access: {operators: [U0OPS]}
"""


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
        self.env = scrubbed()
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


def answers(slack: FakeSlack, name: str, count: int = 1) -> list[dict[str, Any]]:
    until(lambda: len(slack.responses(name)) >= count, 20, f"{count} answer(s) on {name}")
    return slack.responses(name)


def text(answer: dict[str, Any]) -> str:
    return json.dumps(answer.get("blocks") or answer.get("text"), ensure_ascii=False)
