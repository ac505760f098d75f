"""Cron expressions as people write them, for a scheduler that reads weekdays differently.

Standard cron counts weekdays from Sunday (0 and 7 are both Sunday, `1-5` is Monday to Friday);
APScheduler 3's `CronTrigger.from_crontab` passes the field through with 0 meaning Monday, so
`0 9 * * 1-5` would fire Tuesday to Saturday and `7` would be refused. `standard_weekdays` turns
the weekday field into names, which both read the same way.
"""

from __future__ import annotations

NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NUMBERS = {name: number for number, name in enumerate(NAMES)}


def standard_weekdays(expression: str) -> str:
    """`minute hour day month weekday` with the weekday field rewritten as names; the other fields
    are left for the scheduler to check. Raises ValueError for a weekday field cron would refuse."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            "a cron expression with 5 fields (minute hour day month weekday) is expected, "
            f"this has {len(fields)}"
        )
    fields[4] = _weekday_names(fields[4])
    return " ".join(fields)


def _weekday_names(field: str) -> str:
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        days |= _days(part)
    if days == set(range(7)):
        return "*"
    return ",".join(NAMES[day] for day in sorted(days, key=lambda day: (day + 6) % 7))  # mon first


def _days(part: str) -> set[int]:
    span, _, step_text = part.partition("/")
    step = _number(step_text, "step") if step_text else 1
    if step < 1:
        raise ValueError(f"{part!r}: a step must be at least 1")
    if span == "*":
        first, last = 0, 6
    elif "-" in span:
        start, _, end = span.partition("-")
        first, last = _day(start), _day(end)
        if last == 0 and end.strip() == "7":
            last = 7  # `5-7` is Friday to Sunday
        if first > last:
            raise ValueError(f"{part!r}: a range must go forwards, like mon-fri or 1-5")
    else:
        first = last = _day(span)
        if step_text:
            last = 6  # `1/2`: from Monday, every other day
    return {day % 7 for day in range(first, last + 1, step)}


def _day(text: str) -> int:
    word = text.strip().lower()
    if word in _NUMBERS:
        return _NUMBERS[word]
    number = _number(word, "weekday")
    if not 0 <= number <= 7:
        raise ValueError(f"{text!r} is not a weekday: use 0-7 (0 and 7 are Sunday) or sun-sat")
    return number % 7


def _number(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{text!r} is not a {what}: use 0-7 (0 and 7 are Sunday) or sun-sat")
    return int(text)
