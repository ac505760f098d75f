"""`netlog-bot run` in Socket Mode, end to end: the bot as a subprocess with SLACK_APP_TOKEN set (and
no signing secret, as Socket Mode apps are deployed) gets its WebSocket URL from the fake Slack's
`apps.connections.open` and connects to a real WebSocket server; slash commands and clicks arrive
as envelopes and are acked over the socket within Slack's 3 s, answers go to the response_url.
The HTTP port keeps /healthz but serves no /slack/events; SIGTERM closes the socket and exits 0."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bot_process import Bot, answers, text, until
from tests.fakes.slack import FakeSlack
from tests.fakes.socket_mode import FakeSocketMode

USER = "U0SOMEONE"


@pytest.fixture
def socket_mode() -> Iterator[FakeSocketMode]:
    with FakeSocketMode() as fake:
        yield fake


@pytest.fixture
def slack(socket_mode: FakeSocketMode) -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C0WEB", "web-team")
        fake.socket_mode = socket_mode
        yield fake


def socket_mode_bot(tmp_path: Path, slack: FakeSlack, subscription: str) -> Bot:
    bot = Bot(tmp_path, slack, subscription)
    bot.env["SLACK_APP_TOKEN"] = slack.app_token
    del bot.env["SLACK_SIGNING_SECRET"]  # Socket Mode frames are not signed: nothing to verify
    return bot


@pytest.fixture
def bot(tmp_path: Path, slack: FakeSlack, subscription: tuple[str, str]) -> Iterator[Bot]:
    running = socket_mode_bot(tmp_path, slack, subscription[1]).start()
    yield running
    running.kill()


def slash_command(slack: FakeSlack, command_text: str, name: str) -> dict[str, Any]:
    """A slash_commands envelope's payload: the HTTP form's fields, as JSON."""
    return {
        "token": "legacy-verification-token",
        "team_id": slack.team,
        "team_domain": "fake",
        "channel_id": "C0WEB",
        "channel_name": "web-team",
        "user_id": USER,
        "user_name": "someone",
        "command": "/netlog",
        "text": command_text,
        "api_app_id": "A0NETLOG",
        "is_enterprise_install": "false",
        "response_url": slack.response_url(name),
        "trigger_id": "1.2.3",
    }


def click(slack: FakeSlack, action_id: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": USER, "team_id": slack.team},
        "team": {"id": slack.team, "domain": "fake"},
        "api_app_id": "A0NETLOG",
        "channel": {"id": "C0WEB", "name": "web-team"},
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0WEB"},
        "trigger_id": "1.2.3",
        "response_url": slack.response_url("click"),
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "action_ts": "1"}],
    }


def test_help_is_acked_over_the_socket_and_answered_on_the_response_url(
    bot: Bot, slack: FakeSlack, socket_mode: FakeSocketMode
) -> None:
    [opened] = slack.calls_to("apps.connections.open")  # with the app token: FakeSlack checks it
    assert opened.status == 200
    assert opened.response["url"].startswith(socket_mode.ws_root)
    connection = socket_mode.connection()
    # The client pings as soon as it is connected (and ends a link that stops answering).
    socket_mode.wait(lambda: connection.pings >= 1, 5, "ping")

    envelope = socket_mode.send_envelope("slash_commands", slash_command(slack, "help", "help"))
    elapsed, ack = socket_mode.ack(envelope, timeout=10)
    assert elapsed < 3.0
    assert ack == {"envelope_id": envelope}  # a bare ack: the answer goes to the response_url
    [reply] = answers(slack, "help")
    assert reply["response_type"] == "ephemeral"
    assert "`/netlog mute MATCHERS [for DURATION] [-- reason]`" in text(reply)

    # A link button's click is an `interactive` envelope that wants no response payload.
    clicked = socket_mode.send_envelope(
        "interactive", click(slack, "netlog_open_logs"), accepts_response_payload=False
    )
    assert socket_mode.ack(clicked, timeout=10)[1] == {"envelope_id": clicked}


def test_bad_syntax_gets_the_helpful_ephemeral_reply(
    bot: Bot, slack: FakeSlack, socket_mode: FakeSocketMode
) -> None:
    envelope = socket_mode.send_envelope("slash_commands", slash_command(slack, "enable please", "bad"))
    assert socket_mode.ack(envelope, timeout=10)[0] < 3.0
    [reply] = answers(slack, "bad")
    assert reply["response_type"] == "ephemeral"
    assert "neither `allow` nor `deny`" in text(reply)
    assert "/netlog status" in text(reply)  # the help comes with it


def test_the_http_port_keeps_the_probes_but_serves_no_slack_events(bot: Bot) -> None:
    assert bot.get("/healthz")[0] == 200
    until(lambda: bot.get("/readyz")[0] == 200, 20, "/readyz to pass", bot)
    assert json.loads(bot.get("/readyz")[1])["socket_mode"] == "connected"
    assert bot.post_signed(b"command=%2Fnetlog&text=help") == 404  # even signed: Slack uses the socket
    assert bot.get("/slack/events") == (404, b"not found\n")


def test_sigterm_closes_the_socket_and_exits_0(bot: Bot, socket_mode: FakeSocketMode) -> None:
    connection = socket_mode.connection()
    assert bot.stop() == 0
    socket_mode.wait(lambda: not connection.open, 5, "end of the connection")
    # The builtin client hangs up without a closing handshake; either way the bot ended it.
    assert connection.ending in {"close", "eof"}
    assert len(socket_mode.connections) == 1  # and did not reconnect on the way out
    # Closed by the drain, not just dropped when the process died: slack_sdk logs its disconnect.
    log = bot.text()
    closed, stopped = log.find("The connection has been closed"), log.find("run: stopped")
    assert 0 <= closed < stopped, log[-3000:]


def test_a_refresh_reconnects_through_a_new_url_and_commands_still_work(
    bot: Bot, slack: FakeSlack, socket_mode: FakeSocketMode
) -> None:
    first = socket_mode.connection()
    socket_mode.request_refresh()
    socket_mode.wait(lambda: not first.open and len(socket_mode.connections) == 2, 10, "reconnection")
    assert len(slack.calls_to("apps.connections.open")) == 2  # a ticket is good for one connection
    envelope = socket_mode.send_envelope("slash_commands", slash_command(slack, "help", "again"))
    assert socket_mode.ack(envelope, timeout=10)[0] < 3.0
    assert "/netlog status" in text(answers(slack, "again")[0])


@pytest.mark.parametrize(
    ("app_token", "error"),
    [("xoxb-test-token", "not_allowed_token_type"), ("xapp-1-A0NETLOG-1-revoked", "invalid_auth")],
)
def test_a_wrong_app_token_fails_fast_with_a_sentence(
    tmp_path: Path, slack: FakeSlack, app_token: str, error: str
) -> None:
    bot = socket_mode_bot(tmp_path, slack, "projects/test-project/subscriptions/netlog-bot")
    bot.env["SLACK_APP_TOKEN"] = app_token
    result = bot.run_to_exit()
    assert result.returncode == 2, result.stderr
    assert f"Slack refused SLACK_APP_TOKEN at apps.connections.open ({error})" in result.stderr
    assert app_token not in result.stderr


def test_readyz_fails_while_the_socket_is_down(bot: Bot, socket_mode: FakeSocketMode) -> None:
    """Without its WebSocket the bot hears no command: an orchestrator should see that."""
    socket_mode.stop()  # Slack's end goes away and does not come back
    # Wait for the socket's own word: just after the start /readyz may also be 503 for Pub/Sub.
    until(
        lambda: json.loads(bot.get("/readyz")[1] or b"{}").get("socket_mode") == "disconnected",
        30,
        "/readyz to report the lost socket",
        bot,
    )
    status, body = bot.get("/readyz")
    assert status == 503
    assert json.loads(body)["status"] == "not ready"
    assert bot.get("/healthz")[0] == 200  # the process itself works; the socket client reconnects
