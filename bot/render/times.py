"""Times as people read them. In Slack, `<!date^…>`: each reader's client shows the moment in their
own time zone, with a date ("today", "yesterday", "Jan 15"), and clients that cannot (notifications,
old apps) show the fallback, a UTC time with its date. The terminal prints UTC, plainly.

See https://api.slack.com/reference/surfaces/formatting#date-formatting. It works in mrkdwn only:
not in header blocks or other plain_text.
"""

from __future__ import annotations

from datetime import UTC, datetime

#: Slack's tokens: `{date_short_pretty}` is "today", "yesterday" or "Jan 15" (and the year when not
#: this one); `{time}` is the reader's clock, 12 or 24 hours as they chose.
SLACK_FORMAT = "{date_short_pretty} {time}"


def utc(moment: datetime) -> str:
    """`2026-01-15 10:19 UTC`: the terminal's form, and Slack's fallback."""
    return f"{_as_utc(moment):%Y-%m-%d %H:%M} UTC"


def slack_time(moment: datetime) -> str:
    """`<!date^1768472340^{date_short_pretty} {time}|2026-01-15 10:19 UTC>` for mrkdwn text."""
    return f"<!date^{int(_as_utc(moment).timestamp())}^{SLACK_FORMAT}|{utc(moment)}>"


def _as_utc(moment: datetime) -> datetime:
    # Naive times are UTC throughout the bot.
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
