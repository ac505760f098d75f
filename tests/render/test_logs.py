"""Log lines: Cloud Logging's structured JSON where it is read as JSON, readable text elsewhere, and
never a secret in either."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from bot.render.logs import JsonFormatter, TextFormatter, log_format, masked
from tests.environment import HOST_SETTINGS, scrubbed


def record(message: str, *args: object, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("bot.engine", level, "/app/bot/engine.py", 42, message, args, None, "group")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ("text", None)),
        ({"NETLOG_LOG_FORMAT": "json"}, ("json", None)),
        ({"NETLOG_LOG_FORMAT": " JSON "}, ("json", None)),
        ({"K_SERVICE": "netlog-bot"}, ("json", None)),  # Cloud Run
        ({"GAE_SERVICE": "netlog-bot"}, ("json", None)),  # App Engine
        ({"GAE_SERVICE": "netlog-bot", "NETLOG_LOG_FORMAT": "text"}, ("text", None)),
        (
            {"NETLOG_LOG_FORMAT": "yaml"},
            ("text", "NETLOG_LOG_FORMAT='yaml' is neither 'text' nor 'json'; writing text lines"),
        ),
    ],
)
def test_the_format_follows_the_variable_then_the_platform(
    environ: dict[str, str], expected: tuple[str, str | None]
) -> None:
    assert log_format(environ) == expected


def test_a_json_line_is_a_cloud_logging_structured_entry() -> None:
    line = json.loads(JsonFormatter().format(record("run: %d Slack messages stay queued", 3)))
    assert line["severity"] == "WARNING"
    assert line["message"] == "run: 3 Slack messages stay queued"
    assert line["logger"] == "bot.engine"
    assert line["time"].endswith("Z")
    assert line["logging.googleapis.com/sourceLocation"] == {
        "file": "/app/bot/engine.py",
        "line": 42,
        "function": "group",
    }
    assert not any(key.startswith("logging.googleapis.com/trace") for key in line)


def test_a_traceback_goes_into_the_message_of_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failed = record("delivery: failed", level=logging.ERROR)
        failed.exc_info = sys.exc_info()
    text = JsonFormatter().format(failed)
    assert "\n" not in text  # one entry, however long the traceback
    line = json.loads(text)
    assert line["severity"] == "ERROR"
    assert line["message"].startswith("delivery: failed\nTraceback (most recent call last):")
    assert line["message"].endswith("ValueError: boom")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("auth with xoxb-1234-5678-abcdEFGH failed", "auth with xoxb-*** failed"),
        ("socket: xapp-1-A0NETLOG-1-deadbeef refused", "socket: xapp-*** refused"),
        (
            "cannot reach postgresql+psycopg://netlog:s3cr3t@db:5432/netlog",
            "cannot reach postgresql+psycopg://netlog:***@db:5432/netlog",
        ),
        ("header Authorization: Bearer ya29.a0AfH6SM-token", "header Authorization: Bearer ***"),
        (
            "https://slack.com/api/chat.postMessage at 10:00:01",
            "https://slack.com/api/chat.postMessage at 10:00:01",
        ),
    ],
)
def test_secrets_are_masked_in_both_formats(text: str, shown: str) -> None:
    assert masked(text) == shown
    assert json.loads(JsonFormatter().format(record("%s", text)))["message"] == shown
    assert TextFormatter().format(record("%s", text)).endswith(f"WARNING bot.engine: {shown}")


def test_a_start_up_mistake_is_one_json_error_line_where_logs_are_json() -> None:
    environ = scrubbed(drop=HOST_SETTINGS) | {"NETLOG_LOG_FORMAT": "json"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "ingest"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    [line] = [json.loads(text) for text in result.stderr.splitlines()]
    assert line["severity"] == "ERROR"
    assert line["message"].startswith("netlog-bot: NETLOG_SUBSCRIPTION is not set")
