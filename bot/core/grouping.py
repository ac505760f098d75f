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
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Literal, NamedTuple, TypeVar

from bot.core.events import PolicyEvent
from bot.core.routing import FIELD_READERS, RouteMatch, Router, RoutingTable

NotificationKind = Literal["open", "update", "repeat", "resolve"]
_K = TypeVar("_K")
_V = TypeVar("_V")


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
    #: Flows kept across all groups, so memory is bounded by configuration, not by traffic: past it
    #: the least recently folded flow is dropped and its count moves to its group's `other`.
    max_flows_total: int = 200_000

    def __post_init__(self) -> None:
        # A flow is tracked before the cap is enforced, so the newest must fit under it: the fold
        # relies on that (the flow it has just counted is still tracked).
        if self.max_flows_total < 1 or self.max_flows_tracked < 1:
            raise ValueError("max_flows_total and max_flows_tracked must be at least 1")


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


class FlowKey(NamedTuple):
    """A flow's identity. A tuple: built, hashed and compared in C, and every fold of a storm
    looks its flow up in a group's `flows` by it."""

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
        return f"{group_id_prefix(self.key)}{self.started_at.isoformat()}"

    @property
    def is_open(self) -> bool:
        return self.announced_at is not None


def group_id_prefix(key: str) -> str:
    """What the group_id of every life of the group `key` starts with."""
    return hashlib.sha256(key.encode()).hexdigest()[:16] + "@"


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


@dataclass(frozen=True, slots=True)
class GroupChange:
    """One group to save: its header, and its flows that changed since the last save.
    `flows` None means all of them, replacing whatever was saved for the group's key."""

    group: Group
    flows: tuple[tuple[FlowKey, FlowStats], ...] | None = None
    #: Flows no longer tracked (their counts moved to the group's `other_count`).
    evicted: tuple[FlowKey, ...] = ()


#: Distinct route inputs (and group labels) remembered by the fold; past it a cache starts over:
#: a route on a high-cardinality field such as `src_ip` must not grow memory without bound.
FOLD_CACHE_SIZE = 65_536

#: Where one event goes: (group key text, channel, labels) per route that took it.
_Targets = tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]
#: A place events go: their targets and flow.
_Place = tuple[_Targets, FlowKey]
#: Fields a flow (cluster, direction, both endpoints, port, protocol) does not fix. A fold only
#: sees denies, so `disposition` is fixed; an unknown name reads as absent, fixed too.
_NOT_FIXED_BY_FLOW = frozenset({"location", "node"})


class Grouper:
    """The grouping state machine. Pure: callers pass `now` and persist `changes()`.

    Between two `changes()` it remembers what changed, so a save writes only that: the headers of
    groups that changed, their flows that changed, and the groups and flows that went away."""

    def __init__(self, policy: GroupingPolicy, routing: RoutingTable) -> None:
        self.policy = policy
        self.routing = routing
        self.groups: dict[str, Group] = {}
        self._changed: set[str] = set()
        self._dropped: set[str] = set()
        #: Groups created since the last save: saved whole (their key may hold an older life's flows).
        self._fresh: set[str] = set()
        # Flows are found by the id of their stats (an int hashes in C; a FlowKey in Python, and
        # a fold would hash it four times). Every such stats object stays referenced by its group
        # while its id is a key here: entries leave when the flow does. Each is tracked, so
        # `_recent` says which group and flow it is (a fold does not build that pair per deny).
        self._dirty_flows: dict[int, FlowStats] = {}
        self._evicted: dict[str, set[FlowKey]] = {}
        #: Every tracked flow (group key, flow) by its stats' id, least recently folded first:
        #: the global cap evicts from the front.
        self._recent: OrderedDict[int, tuple[str, FlowKey]] = OrderedDict()
        self._prepare()

    def _prepare(self) -> None:
        """Routes and group keys depend on a few fields only: each is worked out once per distinct
        place an event can go (glob matching and JSON-encoding the key cost more than the rest of
        a fold). Redone whenever `policy` or `routing` is replaced."""
        self._prepared = (self.policy, self.routing)
        self._route_fields = self.routing.fields
        read = tuple(dict.fromkeys([*self._route_fields, *self.policy.group_by]))
        self._readers = tuple(FIELD_READERS.get(name, _absent) for name in read)
        self._route_values = _picker([read.index(name) for name in self._route_fields])
        self._label_values = _picker([read.index(name) for name in self.policy.group_by])
        #: Fields routes or labels read that an event's flow does not fix: part of a place's key.
        self._extra_readers = tuple(FIELD_READERS[name] for name in read if name in _NOT_FIXED_BY_FLOW)
        self._router = Router(self.routing, FOLD_CACHE_SIZE)
        self._targets: dict[tuple[int, tuple[str, ...]], _Targets] = {}
        self._places: dict[tuple[object, ...], _Place] = {}

    def fold(self, event: PolicyEvent, now: datetime, muted: frozenset[str] = frozenset()) -> int:
        """Add one event to every group its routes select, except groups in `muted`.
        Returns how many groups took it."""
        return self.fold_all((event,), now, muted)

    def fold_all(
        self, events: Iterable[PolicyEvent], now: datetime, muted: frozenset[str] = frozenset()
    ) -> int:
        """`fold` each event in turn; returns how many (event, group) pairs were added. One loop
        with its lookups bound once: this is the grouping's hot path, run for every deny of a storm."""
        if self._prepared[0] is not self.policy or self._prepared[1] is not self.routing:
            self._prepare()
        places, place_of, extra_readers = self._places, self._place, self._extra_readers
        groups, changed, dirty, recent = self.groups, self._changed, self._dirty_flows, self._recent
        max_tracked = self.policy.max_flows_tracked
        taken = 0
        for event in events:
            if event.disposition != "deny":
                continue  # allow entries are stored as they came but alert nobody
            # Endpoints are shared by the parser and the store's reader, so a storm repeats the
            # same few objects: their ids (hashed in C) stand for them. An id is reused once its
            # object is gone, so a place also checks that the endpoints' labels are the very
            # strings its flow key holds (alive, so no new endpoint builds the same object; one
            # that shares its label string is an address named alike). Holding the endpoints
            # instead would keep tens of megabytes of them alive in a storm of distinct flows.
            src, dest = event.src, event.dest
            key: tuple[object, ...] = (
                id(src),
                id(dest),
                event.direction,
                event.dest_port,
                event.protocol,
                event.cluster,
            )
            if extra_readers:
                key = (*key, *[read(event) for read in extra_readers])
            place = places.get(key)
            if place is None or place[1][2] is not src.label or place[1][3] is not dest.label:
                place = place_of(event, key)
            flow = place[1]
            count, at, node = event.count, event.timestamp, event.node
            for group_key, channel, labels in place[0]:
                if group_key in muted:
                    continue
                taken += 1
                group = groups.get(group_key)
                if group is None:
                    group = Group(group_key, channel, labels, now, at, at, now, event.project or "")
                    groups[group_key] = group
                    self._dropped.discard(group_key)
                    self._fresh.add(group_key)
                    changed.add(group_key)
                # Otherwise the group counts as changed through its dirty flow (see `changes`).
                # Comparisons rather than min()/max(): they cost less, and this runs per deny.
                group.total += count
                if at < group.first_seen:
                    group.first_seen = at
                if at > group.last_seen:
                    group.last_seen = at
                if now > group.last_activity:
                    group.last_activity = now
                if node:
                    group.nodes.add(node)
                stats = group.flows.get(flow)
                if stats is not None:
                    stats.count += count
                    if at < stats.first_seen:
                        stats.first_seen = at
                    if at > stats.last_seen:
                        stats.last_seen = at
                    ident = id(stats)
                    recent.move_to_end(ident)
                elif len(group.flows) < max_tracked:
                    stats = group.flows[flow] = FlowStats(count, at, at)
                    ident = id(stats)
                    self._track(group_key, flow, ident)
                else:
                    group.other_count += count
                    changed.add(group_key)
                    continue
                dirty[ident] = stats
        return taken

    def _place(self, event: PolicyEvent, key: tuple[object, ...]) -> _Place:
        """Where events like this one go (their groups) and as which flow."""
        values = [read(event) or "" for read in self._readers]
        matches = self._router.route(self._route_values(values))
        label_values = self._label_values(values)
        # The router keeps one tuple per distinct set of matches for its lifetime (as long as
        # this memo's), so its id stands for it: hashing its RouteMatch dataclasses costs more.
        targets = self._targets.get((id(matches), label_values))
        if targets is None:
            targets = self._target(matches, label_values)
        place = (targets, FlowKey.of(event))
        _remember(self._places, key, place)
        return place

    def _target(self, matches: tuple[RouteMatch, ...], values: tuple[str, ...]) -> _Targets:
        labels = tuple(zip(self.policy.group_by, values, strict=True))
        targets = tuple(
            (GroupKey(match.channel, match.route, labels).encode(), match.channel, labels)
            for match in matches
        )
        _remember(self._targets, (id(matches), values), targets)
        return targets

    def _track(self, key: str, flow: FlowKey, ident: int) -> None:
        """A flow newly tracked: the least recent ones go while the total is over the cap."""
        self._recent[ident] = (key, flow)
        evicted = self._evicted.get(key)
        if evicted:
            evicted.discard(flow)
        self._enforce_cap()

    def _enforce_cap(self) -> None:
        while len(self._recent) > self.policy.max_flows_total:
            _, (key, flow) = self._recent.popitem(last=False)
            group = self.groups[key]
            stats = group.flows.pop(flow)
            group.other_count += stats.count
            self._changed.add(key)
            self._dirty_flows.pop(id(stats), None)
            self._evicted.setdefault(key, set()).add(flow)

    def tick(self, now: datetime) -> list[Notification]:
        """Everything due at `now`, in a stable order (by group start, then key)."""
        # Most groups are not due at a given tick: find those that are with plain comparisons to
        # cut-off times (no timedelta per group), and order only them.
        policy = self.policy
        open_cut, quiet_cut = now - policy.group_wait, now - policy.resolve_after
        repeat_cut, update_cut = now - policy.repeat_interval, now - policy.group_interval
        due = [
            group
            for group in self.groups.values()
            if (
                group.started_at <= open_cut
                if group.announced_at is None
                else group.last_activity <= quiet_cut
                or group.announced_at <= repeat_cut
                or (
                    group.total > group.notified_total
                    and group.notified_at is not None
                    and group.notified_at <= update_cut
                )
            )
        ]
        due.sort(key=lambda g: (g.started_at, g.key))
        notifications: list[Notification] = []
        for group in due:
            notifications.extend(self._due(group, now))
        return notifications

    def next_deadline(self) -> datetime | None:
        """The earliest time a `tick` could have something to say (an open, an update, a repeat or
        a resolve), whatever arrives meanwhile; None without groups. A replay jumps to it over idle
        stretches instead of ticking through them."""
        policy = self.policy
        deadlines = []
        for group in self.groups.values():
            if group.announced_at is None:
                deadlines.append(group.started_at + policy.group_wait)
                continue
            deadlines.append(group.last_activity + policy.resolve_after)
            deadlines.append(group.announced_at + policy.repeat_interval)
            if group.total > group.notified_total and group.notified_at is not None:
                deadlines.append(group.notified_at + policy.group_interval)
        return min(deadlines, default=None)

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
            self._drop(group)
        elif now - group.announced_at >= policy.repeat_interval:
            yield self._notify(group, "repeat", now)
        elif group.total > group.notified_total and now - group.notified_at >= policy.group_interval:
            yield self._notify(group, "update", now)

    def _drop(self, group: Group) -> None:
        key = group.key
        del self.groups[key]
        for stats in group.flows.values():
            del self._recent[id(stats)]
            self._dirty_flows.pop(id(stats), None)
        for pending in (self._changed, self._fresh):
            pending.discard(key)
        self._evicted.pop(key, None)
        self._dropped.add(key)

    def _notify(self, group: Group, kind: NotificationKind, now: datetime) -> Notification:
        ranked = sorted(
            group.flows.items(),
            key=lambda item: (-item[1].count, -item[1].last_seen.timestamp(), _order(item[0])),
        )
        shown = ranked[: self.policy.max_flows_shown]
        new = [] if kind == "open" else [item for item in ranked if not item[1].announced]
        for _, stats in ranked:
            if not stats.announced:
                stats.announced = True
                self._dirty_flows[id(stats)] = stats
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

    def changes(self) -> tuple[list[GroupChange], set[str]]:
        """What to save since the last call (groups in key order) and keys to delete; then forgets
        them. The groups and flow stats are the live ones: save them before the next `fold` or `tick`."""
        flows: dict[str, list[tuple[FlowKey, FlowStats]]] = {}
        recent = self._recent
        for ident, stats in self._dirty_flows.items():
            key, flow = recent[ident]
            flows.setdefault(key, []).append((flow, stats))
        changed = []
        for key in sorted(self._changed.union(flows)):  # a group with a dirty flow changed too
            group = self.groups[key]
            if key in self._fresh:
                changed.append(GroupChange(group))
                continue
            evicted = self._evicted.get(key, ())
            changed.append(GroupChange(group, tuple(flows.get(key, ())), tuple(evicted)))
        dropped = set(self._dropped)
        for pending in (self._changed, self._dropped, self._fresh):
            pending.clear()
        self._dirty_flows.clear()
        self._evicted.clear()
        return changed, dropped

    def restore(self, groups: Iterable[Group]) -> None:
        """Load saved groups (after a restart or on another replica). If they hold more flows than
        `max_flows_total` (the setting was lowered), the least recently seen go at once."""
        restored = list(groups)
        for group in restored:
            self.groups[group.key] = group
        flows = sorted(
            ((stats.last_seen, group.key, flow) for group in restored for flow, stats in group.flows.items()),
            key=lambda item: (item[0], item[1], _order(item[2])),
        )
        for _, key, flow in flows:
            self._recent[id(self.groups[key].flows[flow])] = (key, flow)
        self._enforce_cap()

    def clear(self) -> None:
        """Forget every group and every pending change (before a reload from the store)."""
        self.groups.clear()
        self._recent.clear()
        for pending in (self._changed, self._dropped, self._fresh):
            pending.clear()
        self._dirty_flows.clear()
        self._evicted.clear()


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    if len(cache) >= FOLD_CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _picker(indices: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """Picks the values at `indices` as a tuple (itemgetter alone gives a bare value for one)."""
    if len(indices) == 1:
        (index,) = indices
        return lambda values: (values[index],)
    if not indices:
        return lambda _: ()
    pick: Callable[[list[str]], tuple[str, ...]] = itemgetter(*indices)
    return pick


def _absent(_event: PolicyEvent) -> None:
    """A field no event has (a route on an unknown name matches it as the empty string)."""
    # nothing to read: the field is absent


def _order(flow: FlowKey) -> tuple[str, str, str, int, str]:
    return (flow.source, flow.destination, flow.direction, flow.dest_port or 0, flow.protocol)


def _summary(key: FlowKey, stats: FlowStats) -> FlowSummary:
    return FlowSummary(key, stats.count, stats.first_seen, stats.last_seen)
