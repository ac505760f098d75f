"""Mutes: matchers with an expiry. A muted deny is still stored and counted (it stays in the store
for inspection), but it joins no alert group, so nobody is paged for it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from bot.core.commands import Matchers
from bot.core.durations import format_duration


@dataclass(frozen=True, slots=True)
class Mute:
    id: int
    matchers: Matchers
    created_at: datetime
    expires_at: datetime
    created_by: str
    reason: str = ""
    #: Set by an alert's mute button: only that group (its route and labels), not every group the
    #: matchers would also match in other routes.
    group_key: str | None = None

    def active(self, now: datetime) -> bool:
        return self.created_at <= now < self.expires_at

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(fnmatchcase(fields.get(name, ""), pattern) for name, pattern in self.matchers)

    @property
    def label(self) -> str:
        shown = " ".join(f"{name}={pattern}" for name, pattern in self.matchers)
        return f"{shown} (one alert)" if self.group_key else shown


def muted_by(fields: Mapping[str, str], mutes: Iterable[Mute], now: datetime) -> Mute | None:
    """The first active mute (not scoped to one group) that matches the event."""
    return next(
        (mute for mute in mutes if mute.group_key is None and mute.active(now) and mute.matches(fields)), None
    )


def muted_at_all(fields: Mapping[str, str], mutes: Iterable[Mute], now: datetime) -> bool:
    """Whether any active mute matches the event, a Mute button's too (its matchers are its
    group's labels): what the flow history marks as muted."""
    return any(mute.active(now) and mute.matches(fields) for mute in mutes)


def muted_groups(mutes: Iterable[Mute], now: datetime) -> frozenset[str]:
    """Group keys muted by alert buttons."""
    return frozenset(mute.group_key for mute in mutes if mute.group_key and mute.active(now))


def covers_group(mute: Mute, group_key: str, labels: Iterable[tuple[str, str]]) -> bool:
    """Whether `mute` silences every deny of an alert group: it is the group's Mute button's, or
    each of its matchers names one of the group's labels (which all its denies share) and matches."""
    if mute.group_key is not None:
        return mute.group_key == group_key
    fields = dict(labels)
    return all(name in fields for name, _ in mute.matchers) and mute.matches(fields)


def mute_of_group(
    group_key: str, labels: Iterable[tuple[str, str]], mutes: Iterable[Mute], now: datetime
) -> Mute | None:
    """The newest active mute that silences the whole group (what its alert says), if any."""
    pairs = tuple(labels)
    covering = [mute for mute in mutes if mute.active(now) and covers_group(mute, group_key, pairs)]
    return covering[-1] if covering else None


def mute_duration(requested: timedelta | None, default: timedelta, maximum: timedelta) -> timedelta:
    """The duration to use, or ValueError saying why the request is refused."""
    duration = default if requested is None else requested  # `for 0m` is refused, not defaulted
    if duration <= timedelta(0):
        raise ValueError("a mute must last longer than zero")
    if duration > maximum:
        raise ValueError(f"mutes last at most {_human(maximum)}; ask for less, or renew it later")
    return duration


def matchers_of_group(labels: Iterable[tuple[str, str]]) -> Matchers:
    """A mute for exactly one alert group: its labels, with glob characters taken literally."""
    return tuple((name, _literal(value)) for name, value in labels)


def _literal(value: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in value)


def _human(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    hours = seconds // 3600
    if seconds % 3600:  # not whole hours: "90m", not "1 hours"
        return format_duration(value)
    return f"{hours // 24} days" if hours >= 48 and hours % 24 == 0 else f"{hours} hours"
