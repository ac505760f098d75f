"""The digest: what a period's denies add up to, for one channel. Pure, with time passed in.

A digest covers whole UTC hours (the flow history's buckets): `Period.ending(until, length)` ends
at the top of the hour `until` falls in, so consecutive digests never count an hour twice and a
digest asked at 09:20 leaves 09:00-09:20 to the next one.

Its numbers come from the flow history, scoped to a channel the way alerts are routed: a flow
belongs to the channels its routes send it to, the default channel getting what no route takes.
The history keeps the flow (cluster, direction, both endpoints as alerts show them, port,
protocol) and its policed namespace, not IPs, location or node, so a route matching on those is
applied as if the field were empty, and the digest says so. A channel that routing never sends
to gets the digest of everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from bot.core.history import DAY, HOUR, NodeCap, hour_of, hour_start
from bot.core.netlogging import LoggingSpec
from bot.core.routing import RoutingTable

#: A flow's identity in the history: cluster, direction, source, destination, port (0: none), protocol.
Identity = tuple[str, str, str, str, int, str]
#: Fields routes can match that the history does not keep (see the module's docstring).
UNKEPT_FIELDS = frozenset({"location", "node", "src_ip", "dest_ip"})
#: Days the "daily average" comparison reads before the period.
AVERAGE_DAYS = 7


class FlowHour(NamedTuple):
    """One flow's denies in one hour (or, for sums over a window, the window: `hour` is its start),
    all nodes together, muted attempts included in `attempts` and also counted apart."""

    hour: int
    cluster: str
    direction: str
    source: str
    destination: str
    dest_port: int
    protocol: str
    namespace: str
    attempts: int
    entries: int
    muted_attempts: int
    first_seen: datetime
    last_seen: datetime

    @property
    def identity(self) -> Identity:
        return (self.cluster, self.direction, self.source, self.destination, self.dest_port, self.protocol)


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in whole UTC hours."""

    start: datetime
    end: datetime

    @classmethod
    def ending(cls, until: datetime, length: timedelta) -> Period:
        if length < HOUR:
            raise ValueError("a digest covers at least one hour")
        end = hour_start(hour_of(until))
        return cls(hour_start(hour_of(end - length)), end)

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def first_hour(self) -> int:
        return hour_of(self.start)

    @property
    def end_hour(self) -> int:
        """The first hour after the period (exclusive)."""
        return hour_of(self.end)

    @property
    def hours(self) -> range:
        return range(self.first_hour, self.end_hour, 3600)

    def previous(self) -> Period:
        return Period(self.start - self.length, self.start)


@dataclass(frozen=True, slots=True)
class DigestFlow:
    cluster: str
    direction: str
    source: str
    destination: str
    dest_port: int | None
    protocol: str
    namespace: str
    attempts: int
    first_seen: datetime

    @property
    def port_label(self) -> str:
        return f"{self.dest_port}/{self.protocol}" if self.dest_port is not None else self.protocol


@dataclass(frozen=True, slots=True)
class Share:
    name: str
    attempts: int
    share: float  # of the period's attempts, 0..1


@dataclass(frozen=True, slots=True)
class Series:
    """Denied attempts per hour of the period, stacked by the top namespaces (the rest as
    "others"), and the previous period's totals hour by hour: what the chart draws."""

    hours: tuple[datetime, ...]
    stacks: tuple[tuple[str, tuple[int, ...]], ...]
    previous: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Health:
    """What the ingest saw in the period, whatever routing says: the same for every channel."""

    #: Hours of the period in which no entry at all arrived (no deny, no allow).
    silent_hours: tuple[datetime, ...] = ()
    #: Messages refused in the period, by reason code.
    rejects: tuple[tuple[str, int], ...] = ()
    #: Typical delay from an entry's timestamp to its arrival (None: nothing arrived).
    lag: timedelta | None = None
    #: Nodes seen at GKE's 500 lines/s cap in the period: their lines past it were dropped.
    capped: tuple[NodeCap, ...] = ()


@dataclass(frozen=True, slots=True)
class ExpiringMute:
    label: str
    expires_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class Digest:
    #: The channel the digest is for; None: everything (no channel, or one routing never sends to).
    channel: str | None
    scoped: bool
    period: Period
    attempts: int
    entries: int
    flow_count: int
    muted_attempts: int
    #: The previous period's attempts; None when the history does not cover it.
    previous_attempts: int | None
    #: Attempts per day over the `average_days` before the period (None: not covered at all).
    daily_average: float | None
    average_days: int
    new_flows: tuple[DigestFlow, ...]
    new_flow_count: int
    top_flows: tuple[DigestFlow, ...]
    namespaces: tuple[Share, ...]
    sources: tuple[Share, ...]
    series: Series
    health: Health
    alerts_opened: int = 0
    alerts_resolved: int = 0
    mutes_expiring: tuple[ExpiringMute, ...] = ()
    #: Clusters and their NetworkLogging settings as read when the digest was made (text, or why not).
    clusters: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())
    late: bool = False

    @property
    def quiet(self) -> bool:
        return self.attempts == 0

    @property
    def period_change(self) -> float | None:
        return _change(self.attempts, self.previous_attempts)

    @property
    def average_change(self) -> float | None:
        """Against the daily average, scaled to the period's length."""
        if self.daily_average is None:
            return None
        return _change(self.attempts, self.daily_average * (self.period.length / DAY))


def _change(now: float, before: float | None) -> float | None:
    """Relative change (0.5 = +50%); None when there is nothing to compare with."""
    if before is None or before == 0:
        return None
    return (now - before) / before


@dataclass(frozen=True, slots=True)
class DigestInputs:
    """What the store holds for a period, for every channel at once."""

    period: Period
    #: Flow hours of the period and of the previous period (hourly rows).
    hours: Sequence[FlowHour]
    #: Flow sums over the `AVERAGE_DAYS` before the period (`hour` is that window's start).
    before: Sequence[FlowHour]
    #: Flows of the period that the history held before the period started.
    seen_before: frozenset[Identity]
    #: The first hour the history covers (None: it holds nothing yet).
    history_start: datetime | None
    health: Health = Health()
    #: (opened, resolved) alert groups in the period, per channel.
    alerts: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    mutes_expiring: tuple[ExpiringMute, ...] = ()
    clusters: tuple[tuple[str, str], ...] = ()


def row_fields(row: FlowHour) -> dict[str, str]:
    """A history row as the route fields it can tell (see `UNKEPT_FIELDS` for those it cannot)."""
    fields = {
        "cluster": row.cluster,
        "namespace": row.namespace,
        "direction": row.direction,
        "source": row.source,
        "destination": row.destination,
        "dest_port": str(row.dest_port) if row.dest_port else "",
        "protocol": row.protocol,
        "disposition": "deny",
    }
    for side, label in (("src", row.source), ("dest", row.destination)):
        namespace, workload = _pod_parts(label)
        fields[f"{side}_namespace"] = namespace
        fields[f"{side}_workload"] = workload
    return fields


def _pod_parts(label: str) -> tuple[str, str]:
    """(namespace, workload) of a pod's label `ns/workload`; empty for nodes and addresses.
    Namespaces have no `/`, and the parser names a node `node/NAME`."""
    namespace, slash, workload = label.partition("/")
    if not slash or namespace == "node" or " " in namespace:
        return "", ""
    return namespace, workload


def digest_channels(configured: Sequence[str]) -> list[str | None]:
    """The digests to make: one per configured channel, or one of everything when none is."""
    return list(dict.fromkeys(configured)) or [None]


def scope(
    rows: Iterable[FlowHour], routing: RoutingTable, channel: str | None
) -> tuple[list[FlowHour], bool]:
    """The rows whose routes send them to `channel`, and whether any were left out by scoping
    (False when the channel gets everything)."""
    rows = list(rows)
    routed = {route.channel for route in routing.routes} | {routing.default_channel}
    if channel is None or channel not in routed:
        return rows, False
    memo: dict[tuple[Identity, str], bool] = {}
    kept = []
    for row in rows:
        key = (row.identity, row.namespace)
        taken = memo.get(key)
        if taken is None:
            matches = routing.route(row_fields(row))
            taken = memo[key] = any(match.channel == channel for match in matches)
        if taken:
            kept.append(row)
    return kept, True


def build_digest(
    inputs: DigestInputs,
    routing: RoutingTable,
    channel: str | None,
    *,
    limit: int = 5,
    stacked: int = 5,
    late: bool = False,
) -> Digest:
    period = inputs.period
    previous = period.previous()
    hours, scoped = scope(inputs.hours, routing, channel)
    before, _ = scope(inputs.before, routing, channel)
    current = [row for row in hours if period.first_hour <= row.hour < period.end_hour]
    earlier = [row for row in hours if previous.first_hour <= row.hour < previous.end_hour]
    flows = _flows(current)
    attempts = sum(row.attempts for row in current)
    new = [flow for identity, flow in flows.items() if identity not in inputs.seen_before]
    ranked = sorted(flows.values(), key=_rank)
    # The history's buckets are hours: one that starts within an hour covers that hour.
    covered = None if inputs.history_start is None else hour_start(hour_of(inputs.history_start))
    previous_attempts = (
        sum(row.attempts for row in earlier) if covered is not None and covered <= previous.start else None
    )
    average_start = period.start - AVERAGE_DAYS * DAY
    if covered is None or covered >= period.start:
        daily_average, days = None, 0
    else:
        days = min(AVERAGE_DAYS, max(1, (period.start - max(covered, average_start)) // DAY))
        daily_average = sum(row.attempts for row in before) / days
    notes = []
    unkept = sorted(UNKEPT_FIELDS.intersection(routing.fields))
    if scoped and unkept:
        notes.append(
            f"Routes match on {', '.join(unkept)}, which the flow history does not keep: "
            "this digest applies them as if the field were empty."
        )
    if inputs.history_start is not None and covered is not None and covered > period.start:
        started = f"{inputs.history_start:%Y-%m-%d %H:%M}"
        notes.append(f"The flow history starts at {started} UTC, within this period.")
    if channel is not None and scoped:
        opened, resolved = inputs.alerts.get(channel, (0, 0))
    else:
        opened = sum(counts[0] for counts in inputs.alerts.values())
        resolved = sum(counts[1] for counts in inputs.alerts.values())
    return Digest(
        channel=channel,
        scoped=scoped,
        period=period,
        attempts=attempts,
        entries=sum(row.entries for row in current),
        flow_count=len(flows),
        muted_attempts=sum(row.muted_attempts for row in current),
        previous_attempts=previous_attempts,
        daily_average=daily_average,
        average_days=days,
        new_flows=tuple(sorted(new, key=_rank)[:limit]),
        new_flow_count=len(new),
        top_flows=tuple(ranked[:limit]),
        namespaces=_shares(current, lambda row: row.namespace or "(none)", attempts, limit),
        sources=_shares(current, lambda row: row.source, attempts, limit),
        series=_series(period, current, earlier, stacked),
        health=inputs.health,
        alerts_opened=opened,
        alerts_resolved=resolved,
        mutes_expiring=inputs.mutes_expiring,
        clusters=inputs.clusters,
        notes=tuple(notes),
        late=late,
    )


def _flows(rows: Iterable[FlowHour]) -> dict[Identity, DigestFlow]:
    flows: dict[Identity, DigestFlow] = {}
    for row in rows:
        seen = flows.get(row.identity)
        if seen is None:
            flows[row.identity] = DigestFlow(
                row.cluster,
                row.direction,
                row.source,
                row.destination,
                row.dest_port or None,
                row.protocol,
                row.namespace,
                row.attempts,
                row.first_seen,
            )
        else:
            flows[row.identity] = DigestFlow(
                seen.cluster,
                seen.direction,
                seen.source,
                seen.destination,
                seen.dest_port,
                seen.protocol,
                seen.namespace,
                seen.attempts + row.attempts,
                min(seen.first_seen, row.first_seen),
            )
    return flows


def _rank(flow: DigestFlow) -> tuple[int, str, str, int, str, str]:
    return (-flow.attempts, flow.source, flow.destination, flow.dest_port or 0, flow.protocol, flow.cluster)


def _shares(
    rows: Iterable[FlowHour], key: Callable[[FlowHour], str], total: int, limit: int
) -> tuple[Share, ...]:
    sums: dict[str, int] = {}
    for row in rows:
        name = key(row)
        sums[name] = sums.get(name, 0) + row.attempts
    ranked = sorted(sums.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return tuple(Share(name, n, n / total if total else 0.0) for name, n in ranked)


def _series(period: Period, current: Sequence[FlowHour], earlier: Sequence[FlowHour], stacked: int) -> Series:
    hours = list(period.hours)
    index = {hour: n for n, hour in enumerate(hours)}
    top = [share.name for share in _shares(current, lambda r: r.namespace or "(none)", 1, stacked)]
    stacks = {name: [0] * len(hours) for name in top}
    others = [0] * len(hours)
    for row in current:
        column = stacks.get(row.namespace or "(none)", others)
        column[index[row.hour]] += row.attempts
    shift = int(period.length.total_seconds())
    previous = [0] * len(hours)
    for row in earlier:
        n = index.get(row.hour + shift)
        if n is not None:
            previous[n] += row.attempts
    layers = [(name, tuple(values)) for name, values in stacks.items()]
    if any(others):
        layers.append(("others", tuple(others)))
    return Series(tuple(datetime.fromtimestamp(hour, UTC) for hour in hours), tuple(layers), tuple(previous))


def silent_hours(period: Period, hours_with_entries: Iterable[int]) -> tuple[datetime, ...]:
    seen = set(hours_with_entries)
    return tuple(hour_start(hour) for hour in period.hours if hour not in seen)


def typical_lag(delays: Sequence[timedelta]) -> timedelta | None:
    """The median delay, or None when there is none."""
    if not delays:
        return None
    ordered = sorted(delays)
    return ordered[len(ordered) // 2]


def logging_coverage(spec: LoggingSpec) -> str:
    """What a cluster's NetworkLogging lets the digest see, in a sentence."""
    if not spec.deny_log:
        return "deny logging is off: its denies are not logged, so this digest cannot see them."
    if spec.deny_delegate:
        return (
            "deny logging is delegated: only namespaces annotated to log denies are logged, so this "
            "digest sees only those."
        )
    return "deny logging is on for the whole cluster."
