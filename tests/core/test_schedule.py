"""Cron weekdays as cron means them (0 and 7 are Sunday), rewritten as names for APScheduler, whose
`from_crontab` would otherwise read 0 as Monday."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import given
from hypothesis import strategies as st

from bot.core.schedule import standard_weekdays


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 9 * * *", "0 9 * * *"),
        ("0 9 * * 1-5", "0 9 * * mon,tue,wed,thu,fri"),
        ("0 9 * * mon-fri", "0 9 * * mon,tue,wed,thu,fri"),
        ("0 9 * * 0", "0 9 * * sun"),
        ("0 9 * * 7", "0 9 * * sun"),
        ("0 9 * * 5-7", "0 9 * * fri,sat,sun"),
        ("0 9 * * 1-7", "0 9 * * *"),
        ("0 9 * * 0-6", "0 9 * * *"),
        ("0 9 * * 1,3,5", "0 9 * * mon,wed,fri"),
        ("0 9 * * */2", "0 9 * * tue,thu,sat,sun"),  # cron: Sun, Tue, Thu, Sat
        ("0 9 * * 1-5/2", "0 9 * * mon,wed,fri"),
        ("0 9 * * SAT,sun", "0 9 * * sat,sun"),
        ("*/15 8-18 1 * ?", "*/15 8-18 1 * *"),
    ],
)
def test_weekdays_become_names(expression: str, expected: str) -> None:
    assert standard_weekdays(expression) == expected


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("0 9 * *", "5 fields"),
        ("0 9 * * 8", "'8' is not a weekday"),
        ("0 9 * * someday", "'someday' is not a weekday"),
        ("0 9 * * 5-1", "must go forwards"),
        ("0 9 * * */0", "at least 1"),
        ("0 9 * * ١", "is not a weekday"),
    ],
)
def test_weekdays_cron_would_refuse_are_refused(expression: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        standard_weekdays(expression)


def test_monday_to_friday_fires_on_monday_to_friday() -> None:
    trigger = CronTrigger.from_crontab(standard_weekdays("0 9 * * 1-5"), timezone="UTC")
    fired, at = [], datetime(2026, 11, 29, tzinfo=UTC)  # a Sunday
    for _ in range(5):
        at = trigger.get_next_fire_time(None, at)
        fired.append(at.strftime("%a"))
        at = at.replace(hour=10)
    assert fired == ["Mon", "Tue", "Wed", "Thu", "Fri"]


@given(st.text(max_size=12))
def test_any_weekday_field_is_names_or_a_value_error(field: str) -> None:
    try:
        result = standard_weekdays(f"0 9 * * {field}")
    except ValueError:
        return
    rewritten = result.split()[4]
    assert rewritten == "*" or set(rewritten.split(",")) <= {"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
