"""`netlog-bot run`'s operational endpoints, on the bot as a process: `/healthz` (liveness) stays 200
while Pub/Sub is unreachable but `/readyz` (readiness) turns 503 and says why, with one warning in
the log and a quiet shutdown; `/metrics` counts what went through, in Prometheus' text format."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.bot_process import Bot, answers, free_port, until
from tests.fakes.slack import FakeSlack
from tests.logentries import encoded
from tests.pubsub_support import PROJECT, publish

pytestmark = pytest.mark.integration


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C0PAY", "payments-oncall")
        fake.add_channel("C0WEB", "web-team")
        yield fake


def samples(bot: Bot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics parsed by Prometheus' own parser: (sample name, labels) -> value."""
    status, body = bot.get("/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_unreachable_pubsub_is_live_but_not_ready_with_a_warning_and_a_quiet_stop(
    tmp_path: Path, slack: FakeSlack
) -> None:
    bot = Bot(tmp_path, slack, f"projects/{PROJECT}/subscriptions/netlog-bot")
    bot.env["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{free_port()}"  # nothing listens there
    try:
        bot.start()
        status, body = bot.get("/readyz")
        assert status == 503
        assert json.loads(body)["pubsub"].startswith("waiting for Pub/Sub's first answer")
        assert bot.get("/healthz")[0] == 200  # a restart would not bring Pub/Sub back

        until(lambda: "every pull from" in bot.text(), 40, "the warning about failing pulls", bot)
        status, body = bot.get("/readyz")
        assert status == 503
        checks = json.loads(body)
        assert checks["status"] == "not ready"
        assert re.match(r"Pub/Sub pulls failing for \d+ s: ", checks["pubsub"]), checks
        assert checks["store"] == "ok"
        assert checks["slack"] == "ok"
        assert bot.get("/healthz")[0] == 200
        assert samples(bot)[("netlog_pubsub_pull_failures_total", ())] >= 1
        assert bot.stop() == 0
    finally:
        bot.kill()
    log = bot.text()
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, warnings  # one warning, not one per failed pull
    assert "Check that this host reaches Pub/Sub" in warnings[0]
    assert "Traceback" not in log
    assert "Background thread did not exit" not in log
    assert "Channel closed" not in log
    assert "run: stopped" in log


def test_ready_once_pulling_and_metrics_count_what_went_through(
    tmp_path: Path, slack: FakeSlack, subscription: tuple[str, str]
) -> None:
    bot = Bot(tmp_path, slack, subscription[1])
    try:
        bot.start()
        until(lambda: bot.get("/readyz")[0] == 200, 20, "/readyz to pass", bot)
        checks = json.loads(bot.get("/readyz")[1])
        assert checks == {
            "status": "ready",
            "pubsub": "pulling",
            "outbox_backlog": checks["outbox_backlog"],
            "store": "ok",
            "slack": "ok",
            "leading": checks["leading"],
        }
        entries = [encoded(source="web", namespace="payments", prefix="m-", port=8080, project=PROJECT)] * 3
        publish(
            subscription[0], [*entries, b"not json", encoded(source="batch", prefix="m-", project=PROJECT)]
        )
        until(lambda: len(slack.messages("C0PAY")) == 1, 30, "the alert", bot)
        form = {
            "team_id": "T0TEAM",
            "channel_id": "C0WEB",
            "user_id": "U0SOMEONE",
            "command": "/netlog",
            "text": "enable please",
            "response_url": slack.response_url("bad"),
            "trigger_id": "1.2.3",
        }
        assert bot.post_signed(urlencode(form).encode()) == 200
        answers(slack, "bad")

        def counted() -> bool:
            found = samples(bot)
            return found.get(("netlog_entries_received_total", ()), 0) == 5 and (
                found.get(("netlog_commands_total", (("command", "(invalid)"), ("outcome", "syntax_error"))))
                == 1
            )

        until(counted, 20, "the counts in /metrics", bot)
        found = samples(bot)
        assert found[("netlog_entries_stored_total", ())] == 2  # the same insertId three times
        assert found[("netlog_entries_duplicate_total", ())] == 2
        assert found[("netlog_entries_rejected_total", (("reason", "not_json"),))] == 1
        # Every entry parsed (a redelivery too: it arrived late as well), each ten seconds old.
        assert found[("netlog_ingest_lag_seconds_count", ())] == 4
        assert found[("netlog_ingest_lag_seconds_bucket", (("le", "5.0"),))] == 0
        assert found[("netlog_ingest_lag_seconds_bucket", (("le", "60.0"),))] == 4
        assert found[("netlog_slack_calls_total", (("method", "chat.postMessage"), ("outcome", "ok")))] >= 1
        assert found[("netlog_slack_calls_total", (("method", "auth.test"), ("outcome", "ok")))] == 1
        assert found[("netlog_leader", ())] == 1
        assert found[("netlog_open_groups", ())] >= 1
        until(lambda: samples(bot)[("netlog_outbox_messages", ())] == 0, 20, "an empty outbox", bot)
        assert samples(bot)[("netlog_outbox_oldest_age_seconds", ())] == 0

        slack.rate_limit_next(1, retry_after=1, methods={"chat.postMessage"})
        publish(subscription[0], [encoded(source="web", namespace="shop", prefix="n-", project=PROJECT)])
        until(
            lambda: samples(bot).get(("netlog_slack_rate_limited_total", ()), 0) == 1,
            30,
            "a 429 counted",
            bot,
        )
        until(lambda: len(slack.messages("C0WEB")) == 1, 30, "the alert after the 429", bot)
        assert bot.stop() == 0
    finally:
        bot.kill()


def test_metrics_and_probes_answer_before_anything_happened(
    tmp_path: Path, slack: FakeSlack, subscription: tuple[str, str]
) -> None:
    bot = Bot(tmp_path, slack, subscription[1])
    try:
        bot.start()
        started = time.monotonic()
        status, body = bot.get("/metrics")
        assert status == 200
        assert time.monotonic() - started < 2
        text = body.decode()
        assert "# TYPE netlog_entries_received_total counter" in text
        assert "netlog_outbox_messages 0.0" in text
        assert bot.stop() == 0
    finally:
        bot.kill()
