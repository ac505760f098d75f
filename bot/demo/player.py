"""Plays timed messages through the real pipeline (parse -> store -> grouping -> outbox -> console).

The clock is virtual: it jumps from tick to tick, so half an hour of traffic plays in a second while
every group_wait, group_interval and resolve_after behaves as it would live.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

from bot.adapters.store import Store
from bot.core.events import RawMessage
from bot.core.grouping import Grouper
from bot.core.outbox import AlertEdit, AlertPost
from bot.pipeline import GroupingWorker, entry_parser, store_messages
from bot.render.console import render_notification
from bot.settings import Settings


@dataclass(frozen=True, slots=True)
class Timed:
    at: datetime
    message: RawMessage


@dataclass(slots=True)
class PlaySummary:
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    notifications: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)


def play(
    timeline: Sequence[Timed],
    settings: Settings,
    store: Store,
    out: TextIO,
    tick: timedelta = timedelta(seconds=10),
) -> PlaySummary:
    """Feeds `timeline` (sorted by `at`) and prints every notification; runs until all groups are quiet."""
    summary = PlaySummary(messages=len(timeline))
    if not timeline:
        return summary
    policy = settings.grouping_policy
    worker = GroupingWorker(store, Grouper(policy, settings.routing))
    parser = entry_parser(settings.networks)
    now = timeline[0].at
    index = 0
    while index < len(timeline) or worker.grouper.groups:
        due = []
        while index < len(timeline) and timeline[index].at <= now:
            due.append(timeline[index].message)
            index += 1
        if due:
            result = store_messages(store, due, parser, now)
            summary.stored += result.stored
            summary.duplicates += result.duplicates
            summary.rejected += result.rejected
        worker.step(now)
        _print_outbox(store, out, summary, now)
        now += tick
    return summary


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
    words = {"open": "new messages", "update": "edits", "repeat": "reposts", "resolve": "marked quiet"}
    kinds = ", ".join(
        f"{summary.notifications[kind]} {words[kind]}" for kind in words if summary.notifications[kind]
    )
    channels = ", ".join(f"{channel} ({count})" for channel, count in sorted(summary.channels.items()))
    print("── summary ─────", file=out)
    print(
        f"  {summary.messages:,} messages: {summary.stored:,} events stored, "
        f"{summary.duplicates:,} duplicates skipped (same insertId), {summary.rejected:,} rejected",
        file=out,
    )
    print(f"  Slack messages: {kinds or 'none'}", file=out)
    print(f"  channels: {channels or 'none'}", file=out)
    rejects = Counter(item.code for item in store.events.rejects(limit=1000))
    if rejects:
        listed = ", ".join(f"{code} ×{count}" for code, count in sorted(rejects.items()))
        print(f"  rejected messages kept for inspection: {listed}", file=out)
