"""Rejects told to people (`bot.core.rejects`), with explicit times: the first of each reason at
once, the rest summarised at most once a minute, nothing when nothing new was refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.rejects import RejectReport

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WRONG = ("wrong_log", "logName 'projects/p/logs/syslog' is not a policy-action log", "m1")
JUNK = ("not_json", "the message is not JSON (Expecting value)", None)


def test_the_first_of_each_reason_is_told_at_once_the_rest_once_a_minute() -> None:
    report = RejectReport()
    first = report.add([WRONG, WRONG, JUNK], T0)
    assert first == [
        "rejected message m1 (wrong_log): logName 'projects/p/logs/syslog' is not a policy-action log. "
        "Further rejects are summarised once a minute; `netlog-bot rejects` lists them",
        "rejected message (not_json): the message is not JSON (Expecting value). "
        "Further rejects are summarised once a minute; `netlog-bot rejects` lists them",
    ]
    assert report.add([WRONG] * 3, T0 + timedelta(seconds=30)) == []  # within the minute: counted
    assert report.add([JUNK], T0 + timedelta(seconds=61)) == [
        "5 messages rejected in the last minute: not_json ×1, wrong_log ×4"
    ]
    assert report.add([], T0 + timedelta(minutes=5)) == []  # nothing new since
    assert report.add([JUNK], T0 + timedelta(minutes=6)) == []  # a new window opens
    assert report.due(T0 + timedelta(minutes=7)) == "1 message rejected in the last minute: not_json ×1"
