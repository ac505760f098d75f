"""Plays timed messages through the real pipeline (parse -> store -> grouping -> outbox -> console).

The clock is virtual: it jumps from tick to tick, so half an hour of traffic plays in a second while
every group_wait, group_interval and resolve_after behaves as it would live.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

from bot.adapters.store import Reject, Store
from bot.core.events import EntryParser, PolicyEvent, RawMessage
from bot.core.grouping import Grouper
from bot.core.outbox import AlertEdit, AlertPost
from bot.pipeline import GroupingWorker, entry_parser, parse_batch, store_parsed
from bot.render.console import render_notification
from bot.render.text import plural
from bot.settings import Settings

#: Events folded per grouping step: a storm's tick holds more than one step, so the player folds
#: everything due before the clock moves on, in steps this big (bounded memory).
FOLD_BATCH = 10_000
#: Arrivals stored per transaction while a tick's due entries are collected.
STORE_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class Timed:
    """What arrives at `at`: a raw body to parse (the demo), or an entry parsed already (replay
    parses each one once, to place it in time): a policy event or a reject."""

    at: datetime
    message: RawMessage | PolicyEvent | Reject


@dataclass(slots=True)
class PlaySummary:
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    #: This play's rejects by reason (a store reused by `replay --db` also holds earlier ones).
    reject_codes: Counter[str] = field(default_factory=Counter)
    notifications: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    #: The virtual time the play ended at (None when nothing played).
    ended_at: datetime | None = None


def play(
    timeline: Iterable[Timed],
    settings: Settings,
    store: Store,
    out: TextIO,
    tick: timedelta = timedelta(seconds=10),
    on_tick: Callable[[PlaySummary], None] | None = None,
) -> PlaySummary:
    """Feeds `timeline` (in time order; one that arrives late plays at the current virtual time)
    and prints every notification; runs until all groups are quiet. `timeline` is consumed as it
    plays, so a generator streams through in bounded memory."""
    summary = PlaySummary()
    arrivals = iter(timeline)
    upcoming = next(arrivals, None)
    if upcoming is None:
        return summary
    worker = GroupingWorker(store, Grouper(settings.grouping_policy, settings.routing), FOLD_BATCH)
    parser = entry_parser(settings.networks)
    now = upcoming.at
    while upcoming is not None or worker.grouper.groups:
        due: list[RawMessage | PolicyEvent | Reject] = []
        while upcoming is not None and upcoming.at <= now:
            due.append(upcoming.message)
            upcoming = next(arrivals, None)
            if len(due) == STORE_BATCH:
                _store(store, due, parser, now, summary)
                due = []
        if due:
            _store(store, due, parser, now, summary)
        worker.catch_up(now)  # every event due by `now` is folded before the clock moves on
        _print_outbox(store, out, summary, now)
        if on_tick is not None:
            on_tick(summary)
        summary.ended_at = now
        now += tick * _ticks_to_next(now, tick, upcoming, worker.grouper.next_deadline())
    return summary


def _ticks_to_next(now: datetime, tick: timedelta, upcoming: Timed | None, deadline: datetime | None) -> int:
    """Ticks until the next arrival or grouping deadline: idle stretches (a sample from 2020 beside
    one from today) are skipped in one step, landing on the tick the stepping would have reached."""
    due = [moment for moment in (upcoming.at if upcoming else None, deadline) if moment is not None]
    if not due:
        return 1
    return max(1, math.ceil((min(due) - now) / tick))


def _store(
    store: Store,
    due: Sequence[RawMessage | PolicyEvent | Reject],
    parser: EntryParser,
    now: datetime,
    summary: PlaySummary,
) -> None:
    raw = [item for item in due if isinstance(item, RawMessage)]
    events = [item for item in due if isinstance(item, PolicyEvent)]
    rejects = [item for item in due if isinstance(item, Reject)]
    if raw:  # the demo's messages are parsed here; replay's were parsed to place them in time
        parsed, refused = parse_batch(raw, parser)
        events, rejects = [*events, *parsed], [*rejects, *refused]
    summary.messages += len(due)
    summary.reject_codes.update(reject.code for reject in rejects)
    result = store_parsed(store, events, rejects, now)
    summary.stored += result.stored
    summary.duplicates += result.duplicates
    summary.rejected += result.rejected


def _print_outbox(store: Store, out: TextIO, summary: PlaySummary, now: datetime) -> None:
    items = store.outbox.pending()
    # Grouping queues only alerts; thread replies and audit lines come from delivery and /netlog.
    alerts = [item.message for item in items if isinstance(item.message, AlertPost | AlertEdit)]
    for alert in alerts:
        note = alert.notification
        summary.notifications[note.kind] += 1
        summary.channels[note.channel] += 1
        print(render_notification(note), file=out)
        print(file=out)
    store.outbox.mark_delivered([item.id for item in items], now)


def print_summary(summary: PlaySummary, store: Store, out: TextIO) -> None:
    words = {"open": "new message", "update": "edit", "repeat": "repost"}
    counts = summary.notifications
    kinds = ", ".join(
        [plural(counts[kind], word) for kind, word in words.items() if counts[kind]]
        + ([f"{counts['resolve']:,} marked quiet"] if counts["resolve"] else [])
    )
    channels = ", ".join(f"{channel} ({count})" for channel, count in sorted(summary.channels.items()))
    print("── summary ─────", file=out)
    print(
        f"  {plural(summary.messages, 'message')}: {plural(summary.stored, 'event')} stored, "
        f"{plural(summary.duplicates, 'duplicate')} skipped (same insertId), {summary.rejected:,} rejected",
        file=out,
    )
    print(f"  Slack messages: {kinds or 'none'}", file=out)
    print(f"  channels: {channels or 'none'}", file=out)
    rejects = summary.reject_codes
    if rejects:
        listed = ", ".join(f"{code} ×{count}" for code, count in sorted(rejects.items()))
        print(f"  rejected messages kept for inspection: {listed}", file=out)
