"""Rejected messages told to people, so a misrouted sink is never mistaken for a quiet cluster: the
first message of each reason at once (with its reason in a sentence), then a summary of the rest at
most once a minute (a count per reason). Pure, with time
passed in; the ingest loop owns one and logs what it returns."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

SUMMARY_EVERY = timedelta(minutes=1)


class RejectReport:
    def __init__(self, every: timedelta = SUMMARY_EVERY) -> None:
        self.every = every
        self._seen: set[str] = set()
        self._counts: dict[str, int] = {}
        self._window: datetime | None = None  # when the rejects not yet summarised began

    def add(self, rejects: Iterable[tuple[str, str, str | None]], now: datetime) -> list[str]:
        """(code, reason, message id) of a batch's rejects -> the lines to log now."""
        lines = []
        for code, reason, message_id in rejects:
            if code not in self._seen:
                self._seen.add(code)
                about = f" {message_id}" if message_id else ""
                lines.append(
                    f"rejected message{about} ({code}): {reason}. Further rejects are summarised once "
                    "a minute; `netlog-bot rejects` lists them"
                )
                continue
            self._counts[code] = self._counts.get(code, 0) + 1
            if self._window is None:
                self._window = now
        summary = self.due(now)
        return [*lines, summary] if summary else lines

    def due(self, now: datetime) -> str | None:
        """The summary of the rejects counted since the last one, once a minute has passed."""
        if not self._counts or self._window is None or now - self._window < self.every:
            return None
        total = sum(self._counts.values())
        parts = ", ".join(f"{code} ×{count:,}" for code, count in sorted(self._counts.items()))
        self._counts.clear()
        self._window = None
        noun = "message" if total == 1 else "messages"
        return f"{total:,} {noun} rejected in the last minute: {parts}"
