"""Alertmanager-style grouping of deny events into alert groups, with time passed in.

A *flow* is (cluster, direction, source, destination, dest port, protocol). An *alert group* is the
set of flows that share a route (so one channel) and the `group_by` labels. The life of a group:

    first deny ──group_wait──> open ──(new denies, at most every group_interval)──> update …
        └── quiet for resolve_after ──> resolve (dropped from state; a later deny starts a new group)
        └── still active after repeat_interval since the last post ──> repeat (posted afresh)

`now` is the processing time (when the bot saw the entry); `first_seen`/`last_seen` are the
entries' own timestamps. Counts are sums of `count`; GKE drops lines past 500/s per node, so they
are lower bounds and every notification carries the full total: no fold is ever lost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from bot.core.events import PolicyEvent
from bot.core.routing import RoutingTable, event_fields

NotificationKind = Literal["open", "update", "repeat", "resolve"]


@dataclass(frozen=True, slots=True)
class GroupingPolicy:
    group_by: tuple[str, ...] = ("cluster", "namespace")
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=1)
    resolve_after: timedelta = timedelta(minutes=15)
    repeat_interval: timedelta = timedelta(hours=4)
    max_flows_shown: int = 10
    #: Flows kept per group; denies of further flows still count in the totals (as `other`).
    max_flows_tracked: int = 500


@dataclass(frozen=True, slots=True)
class GroupKey:
    """What makes an alert group: the channel and route that took the events, and the `group_by`
    labels. Its text form is a public interface: Mute buttons on alerts already posted carry it."""

    channel: str
    route: int | None
    labels: tuple[tuple[str, str], ...]

    def encode(self) -> str:
        return json.dumps([self.channel, self.route, self.labels], separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> GroupKey:
        """ValueError when `text` is not a key this bot wrote."""
        try:
            channel, route, labels = json.loads(text)
            pairs = tuple((str(name), str(value)) for name, value in labels)
        except (ValueError, TypeError) as error:
            raise ValueError(f"not an alert group key: {text[:80]!r}") from error
        if not isinstance(channel, str) or not (route is None or isinstance(route, int)):
            raise ValueError(f"not an alert group key: {text[:80]!r}")
        return cls(channel, route, pairs)


@dataclass(frozen=True, slots=True)
class FlowKey:
    cluster: str
    direction: str
    source: str
    destination: str
    dest_port: int | None
    protocol: str

    @classmethod
    def of(cls, event: PolicyEvent) -> FlowKey:
        return cls(
            event.cluster or "",
            event.direction,
            event.src.label,
            event.dest.label,
            event.dest_port,
            event.protocol,
        )

    @property
    def port_label(self) -> str:
        return f"{self.dest_port}/{self.protocol}" if self.dest_port is not None else self.protocol


@dataclass(slots=True)
class FlowStats:
    count: int
    first_seen: datetime
    last_seen: datetime
    announced: bool = False


@dataclass(frozen=True, slots=True)
class FlowSummary:
    key: FlowKey
    count: int
    first_seen: datetime
    last_seen: datetime


@dataclass(slots=True)
class Group:
    key: str
    channel: str
    labels: tuple[tuple[str, str], ...]
    started_at: datetime
    first_seen: datetime
    last_seen: datetime
    last_activity: datetime
    project: str = ""
    total: int = 0
    other_count: int = 0
    flows: dict[FlowKey, FlowStats] = field(default_factory=dict)
    nodes: set[str] = field(default_factory=set)
    notified_at: datetime | None = None
    announced_at: datetime | None = None
    notified_total: int = 0

    @property
    def group_id(self) -> str:
        """Stable for one life of the group (the Slack message it owns); new after a resolve."""
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:16]
        return f"{digest}@{self.started_at.isoformat()}"

    @property
    def is_open(self) -> bool:
        return self.announced_at is not None


@dataclass(frozen=True, slots=True)
class Notification:
    """What changed in one group: the whole picture, so any sink can render it without state."""

    kind: NotificationKind
    group_id: str
    group_key: str
    channel: str
    labels: tuple[tuple[str, str], ...]
    at: datetime
    project: str
    total: int
    flow_count: int
    other_count: int
    nodes: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    top_flows: tuple[FlowSummary, ...]
    more_flows: int
    #: Flows first seen since the previous notification of this group (thread replies).
    new_flows: tuple[FlowSummary, ...] = ()


class Grouper:
    """The grouping state machine. Pure: callers pass `now` and persist `changes()`."""

    def __init__(self, policy: GroupingPolicy, routing: RoutingTable) -> None:
        self.policy = policy
        self.routing = routing
        self.groups: dict[str, Group] = {}
        self._changed: set[str] = set()
        self._dropped: set[str] = set()

    def fold(self, event: PolicyEvent, now: datetime, muted: frozenset[str] = frozenset()) -> int:
        """Add one event to every group its routes select, except groups in `muted`.
        Returns how many groups took it."""
        if event.disposition != "deny":
            return 0  # allow entries are stored as they came but alert nobody
        fields = event_fields(event)
        labels = tuple((name, fields.get(name, "")) for name in self.policy.group_by)
        taken = 0
        for match in self.routing.route(fields):
            key = GroupKey(match.channel, match.route, labels).encode()
            if key in muted:
                continue
            taken += 1
            group = self.groups.get(key)
            if group is None:
                group = Group(
                    key,
                    match.channel,
                    labels,
                    now,
                    event.timestamp,
                    event.timestamp,
                    now,
                    event.project or "",
                )
                self.groups[key] = group
                self._dropped.discard(key)
            self._add(group, event, now)
            self._changed.add(key)
        return taken

    def _add(self, group: Group, event: PolicyEvent, now: datetime) -> None:
        group.total += event.count
        group.first_seen = min(group.first_seen, event.timestamp)
        group.last_seen = max(group.last_seen, event.timestamp)
        group.last_activity = max(group.last_activity, now)
        if event.node:
            group.nodes.add(event.node)
        flow = FlowKey.of(event)
        stats = group.flows.get(flow)
        if stats is not None:
            stats.count += event.count
            stats.first_seen = min(stats.first_seen, event.timestamp)
            stats.last_seen = max(stats.last_seen, event.timestamp)
        elif len(group.flows) < self.policy.max_flows_tracked:
            group.flows[flow] = FlowStats(event.count, event.timestamp, event.timestamp)
        else:
            group.other_count += event.count

    def tick(self, now: datetime) -> list[Notification]:
        """Everything due at `now`, in a stable order (by group start, then key)."""
        notifications: list[Notification] = []
        for group in sorted(self.groups.values(), key=lambda g: (g.started_at, g.key)):
            notifications.extend(self._due(group, now))
        return notifications

    def _due(self, group: Group, now: datetime) -> Iterable[Notification]:
        policy = self.policy
        if not group.is_open:
            if now - group.started_at < policy.group_wait:
                return
            yield self._notify(group, "open", now)
        quiet = now - group.last_activity >= policy.resolve_after
        assert group.notified_at is not None
        assert group.announced_at is not None
        if quiet:
            yield self._notify(group, "resolve", now)
            del self.groups[group.key]
            self._changed.discard(group.key)
            self._dropped.add(group.key)
        elif now - group.announced_at >= policy.repeat_interval:
            yield self._notify(group, "repeat", now)
        elif group.total > group.notified_total and now - group.notified_at >= policy.group_interval:
            yield self._notify(group, "update", now)

    def _notify(self, group: Group, kind: NotificationKind, now: datetime) -> Notification:
        ranked = sorted(
            group.flows.items(),
            key=lambda item: (-item[1].count, -item[1].last_seen.timestamp(), _order(item[0])),
        )
        shown = ranked[: self.policy.max_flows_shown]
        new = [] if kind == "open" else [item for item in ranked if not item[1].announced]
        for _, stats in ranked:
            stats.announced = True
        group.notified_at = now
        group.notified_total = group.total
        if kind in ("open", "repeat"):
            group.announced_at = now
        self._changed.add(group.key)
        return Notification(
            kind=kind,
            group_id=group.group_id,
            group_key=group.key,
            channel=group.channel,
            labels=group.labels,
            at=now,
            project=group.project,
            total=group.total,
            flow_count=len(group.flows),
            other_count=group.other_count,
            nodes=tuple(sorted(group.nodes)),
            first_seen=group.first_seen,
            last_seen=group.last_seen,
            top_flows=tuple(_summary(key, stats) for key, stats in shown),
            more_flows=len(ranked) - len(shown),
            new_flows=tuple(_summary(key, stats) for key, stats in new),
        )

    def changes(self) -> tuple[list[Group], set[str]]:
        """Groups to save (in key order) and keys to delete since the last call; then forgets them.
        The groups are the live ones: save them before the next `fold` or `tick`."""
        changed = [self.groups[key] for key in sorted(self._changed)]
        dropped = set(self._dropped)
        self._changed.clear()
        self._dropped.clear()
        return changed, dropped

    def restore(self, groups: Iterable[Group]) -> None:
        """Load saved groups (after a restart or on another replica)."""
        for group in groups:
            self.groups[group.key] = group


def _order(flow: FlowKey) -> tuple[str, str, str, int, str]:
    return (flow.source, flow.destination, flow.direction, flow.dest_port or 0, flow.protocol)


def _summary(key: FlowKey, stats: FlowStats) -> FlowSummary:
    return FlowSummary(key, stats.count, stats.first_seen, stats.last_seen)
