"""`/netlog recent` and `/netlog top` through Slack's front door: signed slash commands to
`netlog-bot run` (a subprocess) fed by the Pub/Sub emulator, answered on the response_url from the
bot's flow history, and from Cloud Logging (the fake) when the window reaches before the history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.adapters.store import Store
from bot.core.history import FlowFilter, Window
from tests.bot_process import Bot, answers, text, until
from tests.fakes.logging import FakeCloudLogging
from tests.fakes.slack import FakeSlack
from tests.logentries import encoded, log_entry
from tests.pubsub_support import PROJECT, publish

USER = "U0READER"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C0WEB", "web")
        yield fake


@pytest.fixture
def logging_api() -> Iterator[FakeCloudLogging]:
    with FakeCloudLogging(project=PROJECT) as fake:
        yield fake


@pytest.fixture
def bot(
    tmp_path: Path, slack: FakeSlack, subscription: tuple[str, str], logging_api: FakeCloudLogging
) -> Iterator[Bot]:
    running = Bot(tmp_path, slack, subscription[1])
    running.env["NETLOG_LOGGING_API_URL"] = logging_api.api_url
    running.start()
    yield running
    running.kill()


def slash(bot: Bot, slack: FakeSlack, words: str, name: str, elapsed: list[float]) -> int:
    form = {
        "token": "legacy",
        "team_id": "T0TEAM",
        "channel_id": "C0WEB",
        "user_id": USER,
        "command": "/netlog",
        "text": words,
        "response_url": slack.response_url(name),
        "trigger_id": "1.2.3",
    }
    return bot.post_signed(urlencode(form).encode(), elapsed=elapsed)


def gke_entry(**fields: Any) -> dict[str, Any]:
    """A LogEntry as GKE writes it today: both sides carry `pod_namespace` beside `namespace`
    (the filter the bot sends Cloud Logging reads `pod_namespace`, which both formats have)."""
    entry = log_entry(project=PROJECT, **fields)
    for side in ("src", "dest"):
        entry["jsonPayload"][side]["pod_namespace"] = entry["jsonPayload"][side]["namespace"]
    return entry


def history_attempts(bot: Bot) -> int:
    store = Store(bot.env["NETLOG_DB_URL"])
    try:
        window = Window.since(datetime.now(UTC), timedelta(hours=1))
        return sum(row.attempts for row in store.history.flow_nodes(FlowFilter(), window))
    finally:
        store.close()


def test_recent_and_top_from_the_history_ephemeral_or_shared(
    bot: Bot, slack: FakeSlack, subscription: tuple[str, str]
) -> None:
    bodies = [encoded(source="web", count=5, project=PROJECT) for _ in range(40)]
    bodies += [encoded(source="web", namespace="shop", project=PROJECT)]
    publish(subscription[0], bodies + bodies[:5])  # redelivered copies: the same insertIds
    until(lambda: history_attempts(bot) == 201, 30, "the history to hold every deny once", bot)

    elapsed: list[float] = []
    # The bot started this hour: only `source=history` keeps Cloud Logging out of "the last hour".
    assert slash(bot, slack, "recent ns=payments since=1h source=history", "recent", elapsed) == 200
    assert elapsed[0] < 3.0
    [recent] = answers(slack, "recent")
    assert recent["response_type"] == "ephemeral"
    shown = text(recent)
    assert "Recent denied flows for `ns=payments`" in shown
    assert "From the bot's history" in shown
    assert "At least 200 denied attempts in 1 flow (40 log entries)." in shown
    assert "`checkout/web` → `payments/api` :443/tcp, ingress" in shown
    assert "Open in Logs Explorer" in shown

    assert slash(bot, slack, "top by=namespace since=1h share source=history", "top", elapsed) == 200
    [top] = answers(slack, "top")
    assert top["response_type"] == "in_channel"
    assert "1. `payments` — 200 (100%)" in text(top)
    assert "2. `shop` — 1 (0%)" in text(top)
    assert "The history does not reach the previous period: nothing to compare with." in text(top)


def test_bad_filters_get_a_sentence_with_an_example(bot: Bot, slack: FakeSlack) -> None:
    elapsed: list[float] = []
    assert slash(bot, slack, "recent port=http", "bad", elapsed) == 200
    [answer] = answers(slack, "bad")
    assert answer["response_type"] == "ephemeral"
    assert "`port=http` is not a port; give a number from 1 to 65535, e.g. `port=5432`." in text(answer)
    assert "Traceback" not in text(answer)


def test_a_window_before_the_history_is_answered_by_cloud_logging(
    bot: Bot, slack: FakeSlack, subscription: tuple[str, str], logging_api: FakeCloudLogging
) -> None:
    publish(subscription[0], [encoded(source="web", project=PROJECT)])
    until(lambda: history_attempts(bot) == 1, 30, "a history that starts this hour", bot)
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    logging_api.add(*[gke_entry(at=three_days_ago, source="legacy", count=4) for _ in range(3)])
    elapsed: list[float] = []
    assert slash(bot, slack, "recent ns=payments since=7d", "old", elapsed) == 200
    assert elapsed[0] < 3.0
    [answer] = answers(slack, "old")
    shown = text(answer)
    assert "From Cloud Logging" in shown
    assert "`checkout/legacy` → `payments/api` :443/tcp, ingress · at least 12 attempts" in shown
    [request] = logging_api.requests
    assert 'timestamp>="' in (request.filter or "")
    assert request.resource_names == [f"projects/{PROJECT}"]

    logging_api.fail_next(403)
    assert slash(bot, slack, "recent ns=payments source=logging since=2h", "denied", elapsed) == 200
    refused = text(answers(slack, "denied")[0])
    assert "roles/logging.viewer" in refused
    assert PROJECT in refused
