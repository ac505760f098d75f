"""Times in Slack are `<!date^…>` tokens (each reader's zone, with a date) whose fallback is a UTC
time with its date; the terminal prints plain UTC. Every Slack message that shows a moment uses
them: alerts (quiet since, first and last seen, each flow's last), thread replies, the mute card,
status and the digest; the console's alert lines stay as they were."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from bot.core import commands as cmd
from bot.render.blocks import render_alert, render_thread_reply
from bot.render.console import render_notification
from bot.render.replies import ClusterStatus, mute_card, status
from bot.render.times import slack_time, utc
from tests.render.test_blocks import FLOWS, T0, note

STAMP = int(T0.timestamp())


def test_a_slack_time_is_a_date_token_with_a_utc_fallback() -> None:
    assert slack_time(T0) == f"<!date^{STAMP}^{{date_short_pretty}} {{time}}|2026-01-15 10:02 UTC>"
    berlin = T0.astimezone(timezone(timedelta(hours=1)))
    assert slack_time(berlin) == slack_time(T0)  # the same moment, whatever zone it came in
    assert slack_time(T0.replace(tzinfo=None)) == slack_time(T0)  # naive times are UTC
    assert utc(berlin) == "2026-01-15 10:02 UTC"


def test_alerts_show_every_moment_as_a_date_token() -> None:
    for kind in ("open", "update", "resolve"):
        mrkdwn = json.dumps(render_alert(note(kind))["blocks"])
        assert "UTC*" not in mrkdwn
        assert mrkdwn.count("<!date^") >= 5  # first, last, and each flow's last
        assert f"first {slack_time(T0)}" in json.loads(mrkdwn)[2]["text"]["text"]
    resolve = render_alert(note("resolve"))["blocks"][1]["text"]["text"]
    assert resolve == f":large_green_circle: *Quiet since* {slack_time(T0 + timedelta(minutes=17))}"
    reply = render_thread_reply(note("update"), FLOWS[1:2])["blocks"][0]["text"]["text"]
    assert slack_time(FLOWS[1].last_seen) in reply


def test_the_terminal_keeps_plain_utc() -> None:
    printed = render_notification(note("resolve"))
    assert "<!date" not in printed
    assert "quiet since 10:19 UTC" in printed
    assert "first 10:02, last 10:19 UTC" in printed


def test_the_mute_card_and_status_show_date_tokens() -> None:
    card = mute_card(cmd.Mute((("namespace", "x"),), timedelta(hours=1), ""), timedelta(hours=1), T0)
    assert f"(until {slack_time(T0 + timedelta(hours=1))})" in card.lines[0]
    reply = status([ClusterStatus("prod", "unreadable", "unreadable", T0, 1.0, 0)], [], 0, T0)
    assert f"last entry: {slack_time(T0)};" in reply.blocks[0]["text"]["text"]


def test_a_moment_from_another_day_keeps_its_date_in_the_fallback() -> None:
    yesterday = datetime(2026, 1, 14, 23, 59, tzinfo=UTC)
    assert slack_time(yesterday).endswith("|2026-01-14 23:59 UTC>")
