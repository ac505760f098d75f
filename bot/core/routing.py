"""Which channels an event goes to: routes of glob matchers over event fields, first match wins.

Routing happens per event, before grouping (as in Alertmanager): a group never mixes events that
different routes would send to different places, so every group has exactly one channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache

from bot.core.events import PolicyEvent

#: Fields that routes match on and alerts group by. `namespace` is the policed namespace.
EVENT_FIELDS = (
    "cluster",
    "location",
    "namespace",
    "direction",
    "source",
    "destination",
    "src_namespace",
    "dest_namespace",
    "src_workload",
    "dest_workload",
    "src_ip",
    "dest_ip",
    "dest_port",
    "protocol",
    "node",
    "disposition",
)


def _dest_port(event: PolicyEvent) -> str | None:
    return str(event.dest_port) if event.dest_port is not None else None


#: How to read each field from an event; None and "" both mean absent.
FIELD_READERS: dict[str, Callable[[PolicyEvent], str | None]] = {
    "cluster": lambda e: e.cluster,
    "location": lambda e: e.location,
    "namespace": lambda e: e.namespace,
    "direction": lambda e: e.direction,
    "source": lambda e: e.src.label,
    "destination": lambda e: e.dest.label,
    "src_namespace": lambda e: e.src.namespace,
    "dest_namespace": lambda e: e.dest.namespace,
    "src_workload": lambda e: e.src.workload,
    "dest_workload": lambda e: e.dest.workload,
    "src_ip": lambda e: e.src.ip,
    "dest_ip": lambda e: e.dest.ip,
    "dest_port": _dest_port,
    "protocol": lambda e: e.protocol,
    "node": lambda e: e.node,
    "disposition": lambda e: e.disposition,
}


def event_fields(event: PolicyEvent) -> dict[str, str]:
    """The event as flat strings; absent values are empty strings so globs stay simple."""
    return {name: read(event) or "" for name, read in FIELD_READERS.items()}


@dataclass(frozen=True, slots=True)
class Route:
    """`match` maps field names to globs (`payments*`); all must match. `continue_` keeps looking."""

    match: tuple[tuple[str, str], ...]
    channel: str
    continue_: bool = False

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(_glob(fields.get(name, ""), pattern) for name, pattern in self.match)


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """Where an event goes and why: `route` is the index in `routes`, None for the default channel."""

    channel: str
    route: int | None


@dataclass(frozen=True, slots=True)
class RoutingTable:
    routes: tuple[Route, ...]
    default_channel: str

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields routes look at: where an event goes depends on these values only."""
        return tuple(dict.fromkeys(name for route in self.routes for name, _ in route.match))

    def route(self, fields: Mapping[str, str]) -> tuple[RouteMatch, ...]:
        """Every matching route until one without `continue`; the default channel if none matched."""
        matches: list[RouteMatch] = []
        for index, candidate in enumerate(self.routes):
            if candidate.matches(fields):
                if all(m.channel != candidate.channel for m in matches):
                    matches.append(RouteMatch(candidate.channel, index))
                if not candidate.continue_:
                    return tuple(matches)
        return tuple(matches) or (RouteMatch(self.default_channel, None),)


class Router:
    """`RoutingTable.route` for a storm, on the values of `table.fields` in that order.

    Each distinct value of a field is matched against that field's globs once, giving the set of
    routes it does not rule out (a bit per route); an event's routes are the intersection, and
    each distinct intersection becomes its matches once. Per event that is one lookup per field,
    however many namespaces times ports times clusters a storm combines. Memos are bounded."""

    def __init__(self, table: RoutingTable, memo_size: int = 65_536) -> None:
        self.table = table
        self.fields = table.fields
        self.memo_size = memo_size
        every = (1 << len(table.routes)) - 1
        self._globs = [
            [
                (index, pattern)
                for index, route in enumerate(table.routes)
                for name, pattern in route.match
                if name == field
            ]
            for field in self.fields
        ]
        self._passing: list[dict[str, int]] = [{} for _ in self.fields]
        self._matches: dict[int, tuple[RouteMatch, ...]] = {}
        self._every = every

    def route(self, values: Sequence[str]) -> tuple[RouteMatch, ...]:
        routes = self._every
        for position, value in enumerate(values):
            passing = self._passing[position].get(value)
            if passing is None:
                passing = self._pass(position, value)
            routes &= passing
        matches = self._matches.get(routes)
        if matches is None:
            matches = self._matches[routes] = self._resolve(routes)
        return matches

    def _pass(self, position: int, value: str) -> int:
        failing = 0
        for index, pattern in self._globs[position]:
            if not fnmatchcase(value, pattern):
                failing |= 1 << index
        passing = self._every & ~failing  # routes with no glob on this field pass whatever its value
        memo = self._passing[position]
        if len(memo) >= self.memo_size:
            memo.clear()  # a route on a high-cardinality field (src_ip) must not grow without bound
        memo[value] = passing
        return passing

    def _resolve(self, routes: int) -> tuple[RouteMatch, ...]:
        """What `RoutingTable.route` answers when exactly the routes in `routes` match."""
        matches: list[RouteMatch] = []
        for index, candidate in enumerate(self.table.routes):
            if routes >> index & 1:
                if all(m.channel != candidate.channel for m in matches):
                    matches.append(RouteMatch(candidate.channel, index))
                if not candidate.continue_:
                    return tuple(matches)
        return tuple(matches) or (RouteMatch(self.table.default_channel, None),)


@lru_cache(maxsize=65_536)
def _glob(value: str, pattern: str) -> bool:
    """One glob per distinct (value, pattern), for `RoutingTable.route` (status and tests; the
    grouper routes with a `Router`)."""
    return fnmatchcase(value, pattern)


def unknown_fields(names: Sequence[str]) -> list[str]:
    """Names that are not event fields (for validating config and commands)."""
    return [name for name in names if name not in EVENT_FIELDS]
