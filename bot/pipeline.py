"""The bot's main job, in two halves that share only the store:

- `store_messages`: raw message bodies -> parsed events and rejects -> one store transaction.
  Pub/Sub ingest and `demo` go through it; `replay`, which parses each entry to place it in time,
  hands its parsed events and rejects to `store_parsed`.
- `GroupingWorker`: a cursor over the stored events -> the grouper -> group state, cursor, the
  flow history's hourly rows and the notifications' outbox messages (a post or an edit each)
  saved in one transaction. It never
  sees the subscriber, so ingest and grouping can run in different processes, and a restart
  resumes from the cursor without re-counting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import orjson

from bot.adapters.logentry import FastEntryParser
from bot.adapters.store import Fence, IngestResult, Reject, Store
from bot.core.events import EntryParser, NetworkNames, PolicyEvent, RawMessage, RejectedEntry
from bot.core.grouping import Grouper, Notification
from bot.core.history import Cell, CellKey, LineCounts, NodeCap, RollUp
from bot.core.mutes import Mute, muted_at_all, muted_by, muted_groups
from bot.core.outbox import alert_message
from bot.core.rejects import RejectReport
from bot.core.routing import event_fields

if TYPE_CHECKING:  # the Prometheus client stays out of replay and the demo, which count nothing
    from bot.adapters.metrics import Metrics

log = logging.getLogger(__name__)
reject_log = logging.getLogger("bot.rejects")

GROUPING_CURSOR = "grouping"


def entry_parser(networks: NetworkNames) -> EntryParser:
    """The parser ingest, replay and the demo keep for their lifetime (its memos pay off over a
    storm). msgspec reads the usual entries into typed structs (`bot.adapters.logentry`); the
    rest are decoded by orjson, about twice as fast as the stdlib's, whose text needs no further
    Unicode check."""
    return FastEntryParser(networks, loads=orjson.loads)


def parse_batch(
    messages: Sequence[RawMessage], parser: EntryParser
) -> tuple[list[PolicyEvent], list[Reject]]:
    parsed: list[PolicyEvent] = []
    rejected: list[Reject] = []
    parse = parser.parse
    for message in messages:
        try:
            parsed.append(parse(message.data))
        except RejectedEntry as error:
            rejected.append(Reject(error.code, error.reason, message.data, message.message_id))
    return parsed, rejected


def store_messages(
    store: Store, messages: Sequence[RawMessage], parser: EntryParser, now: datetime
) -> IngestResult:
    """Parse and durably store a batch. Malformed messages are kept as rejects, never raised."""
    parsed, rejected = parse_batch(messages, parser)
    return store_parsed(store, parsed, rejected, now)


#: Ingest lag is measured on at most this many entries per batch, spread over it: enough for the
#: histogram's shape, and a storm's batch of 1,000 costs 100 observations, not 1,000.
LAG_SAMPLE = 100


_T = TypeVar("_T")


def spread(items: Sequence[_T], most: int) -> Sequence[_T]:
    """At most `most` of `items`, evenly spaced from the first (all of them when that few)."""
    step = -(-len(items) // most) or 1  # rounded up: a step rounded down could take twice `most`
    return items[::step]


def ingest_batch(
    store: Store,
    messages: Sequence[RawMessage],
    parser: EntryParser,
    now: datetime,
    report: RejectReport,
    metrics: Metrics | None = None,
) -> IngestResult:
    """`store_messages` for the ingest loop: its rejects are also told to people through `report`
    (the first of each reason, then a summary a minute), on the `bot.rejects` logger, which every
    command keeps at WARNING: a sink sending the wrong logs must show in `run` and `ingest`.
    Counted in `metrics` once stored."""
    parsed, rejected = parse_batch(messages, parser)
    result = store_parsed(store, parsed, rejected, now)
    for line in report.add(((r.code, r.reason, r.message_id) for r in rejected), now):
        reject_log.warning("%s", line)
    if metrics is not None:
        sample = spread(parsed, LAG_SAMPLE)
        metrics.ingested(
            len(messages),
            result.stored,
            result.duplicates,
            (r.code for r in rejected),
            [(now - event.timestamp).total_seconds() for event in sample],
        )
    return result


def store_parsed(
    store: Store, parsed: Sequence[PolicyEvent], rejected: Sequence[Reject], now: datetime
) -> IngestResult:
    """Store a batch parsed already (`replay` parses each entry once, to order it by time)."""
    result = store.events.add(parsed, rejected, now)
    for item in rejected:
        log.warning("rejected message %s: %s", item.message_id or "(no id)", item.reason)
    return result


#: Events folded per step (one transaction). Each step's commit writes the flows, group headers
#: and history cells it touched once, however often they were folded, and pays one fsync: on the
#: bench's 200k-entry storm over 50k flows, catch-up ran at ~33k events/s with 50,000 per step
#: and ~49k/s with 200,000 (measured back to back).
GROUPING_BATCH = 200_000
#: Events read and folded at a time within a step: what a step holds in memory at once (~450 B
#: an event), whatever its size.
GROUPING_READ = 20_000
#: A step stops reading after this long and commits what it folded: well inside the alerts
#: lease (`bot.engine.LEASE_TTL`, renewed between steps) on a slow machine or database.
GROUPING_STEP_SECONDS = 5.0


class GroupingWorker:
    """Folds stored events into groups; one worker per store at a time."""

    def __init__(
        self,
        store: Store,
        grouper: Grouper,
        batch_size: int = GROUPING_BATCH,
        fence: Fence | None = None,
        read_size: int = GROUPING_READ,
        step_seconds: float = GROUPING_STEP_SECONDS,
    ) -> None:
        self.store = store
        self.fence = fence  # with several replicas: commit only while holding the alerts lease
        self.grouper = grouper
        self.batch_size = batch_size
        self.read_size = read_size
        self.step_seconds = step_seconds
        grouper.restore(store.grouping.load())
        self.position = store.grouping.cursor(GROUPING_CURSOR)
        #: The last step stopped before the stored events ran out: more are likely waiting.
        self.behind = False
        self._stale = False

    def step(self, now: datetime) -> list[Notification]:
        """Fold up to `batch_size` new events (`read_size` at a time, for at most about
        `step_seconds`), then emit whatever is due at `now`, and commit it all in one transaction."""
        if self._stale:
            self.reload()  # raises while the store is still down; the caller's loop retries
        position, more, history, caps = self._fold(now)
        self._stale = True  # memory runs ahead of the store until the commit
        notifications = self.grouper.tick(now)
        upserts, deletes = self.grouper.changes()
        if position != self.position or upserts or deletes or notifications:
            messages = [alert_message(n) for n in notifications]
            self.store.grouping.commit(
                GROUPING_CURSOR, position, upserts, deletes, messages, now, self.fence, history, caps
            )
        self._stale = False
        self.position = position
        self.behind = more
        return notifications

    def _fold(self, now: datetime) -> tuple[int, bool, dict[CellKey, Cell], list[NodeCap]]:
        """(position, whether more events may be waiting, history cells, capped nodes) of the
        events stored after the cursor: up to `batch_size` of them, or what `step_seconds` allow."""
        position, folded, full = self.position, 0, False
        started = time.monotonic()
        history, lines = RollUp(), LineCounts()
        while folded < self.batch_size:
            limit = min(self.read_size, self.batch_size - folded)
            rows = self.store.events.read(position, limit)
            if not rows:
                full = False  # the stored events ran out exactly at the end of the last read
                break
            # Read after the events, for each read: every event is judged by the mutes of a moment
            # after it was stored, as a step of one read judged them.
            mutes: list[Mute] = self.store.mutes.active(now)
            groups = muted_groups(mutes, now)
            muted = partial(_muted_at_all, mutes=mutes, now=now) if mutes else None
            events = [event for _, event in rows]
            # The history counts every deny, muted ones marked as such.
            history.add(events, muted)
            lines.add(events)
            if mutes:  # a muted event is stored and counted, but it alerts nobody
                events = [event for event in events if not muted_by(event_fields(event), mutes, now)]
            self._stale = True  # folded, not yet committed: a failure from here on reloads
            self.grouper.fold_all(events, now, groups)
            position = rows[-1][0]
            folded += len(rows)
            full = len(rows) == limit
            if not full or time.monotonic() - started >= self.step_seconds:
                break
        return position, full, history.cells(), lines.capped()

    def reload(self) -> None:
        """Forget memory and take the state from the store (after a failure, or on taking over).
        Reads first, then swaps: if the store is down, memory is left as it was, still stale."""
        groups = self.store.grouping.load()
        position = self.store.grouping.cursor(GROUPING_CURSOR)
        self.grouper.clear()
        self.grouper.restore(groups)
        self.position = position
        self._stale = False

    def catch_up(self, now: datetime) -> list[Notification]:
        """Steps until every stored event is folded."""
        notifications = self.step(now)
        while self.behind or self.store.events.read(self.position, 1):
            notifications.extend(self.step(now))
        return notifications


def _muted_at_all(event: PolicyEvent, mutes: Sequence[Mute], now: datetime) -> bool:
    return muted_at_all(event_fields(event), mutes, now)
