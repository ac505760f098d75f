"""One test clock: the bot takes time as a callable returning an aware UTC datetime, so tests pass
this one and move it by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: float | timedelta) -> datetime:
        """Moves on by `by` (seconds, or a timedelta) and returns the new time."""
        self.now += by if isinstance(by, timedelta) else timedelta(seconds=by)
        return self.now
