"""Cloud Logging filters for a group of denies or a history question, and the Logs Explorer link
that opens them.

Field paths follow the policy-action format (see the reference doc). `pod_namespace` is used for
namespaces because both payload formats carry it. The filter always names a timestamp: without one,
Cloud Logging silently reads only the last 24 hours. String comparisons in the Logging query
language ignore case, which only ever widens what a condition lets through.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from bot.core.history import FlowFilter

LOGS_EXPLORER = "https://console.cloud.google.com/logs/query"

#: Group labels that map onto one LogEntry field. `namespace` (policed) needs the direction too.
_FIELDS = {
    "cluster": "resource.labels.cluster_name",
    "location": "resource.labels.location",
    "direction": "jsonPayload.connection.direction",
    "protocol": "jsonPayload.connection.protocol",
    "dest_port": "jsonPayload.connection.dest_port",
    "src_namespace": "jsonPayload.src.pod_namespace",
    "dest_namespace": "jsonPayload.dest.pod_namespace",
    "src_ip": "jsonPayload.connection.src_ip",
    "dest_ip": "jsonPayload.connection.dest_ip",
    "node": "jsonPayload.node_name",
    "disposition": "jsonPayload.disposition",
}

#: What `FlowFilter` globs treat specially (`fnmatchcase` reads `[...]` as a character class).
_GLOB_SPECIALS = frozenset("*?[")
#: Protocols the logger writes as such; anything else is read as `unknown`, which no one value names.
_LOGGED_PROTOCOLS = frozenset({"tcp", "udp", "icmp"})


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def deny_filter(project: str, labels: Iterable[tuple[str, str]], since: datetime) -> str:
    """A filter (one condition per line, i.e. AND) for the denies of one alert group."""
    lines = [
        'resource.type="k8s_node"',
        f"logName={quoted(f'projects/{project}/logs/policy-action')}",
        'jsonPayload.disposition="deny"',
    ]
    for name, value in labels:
        if not value:
            lines += _absent(name)
        elif name == "namespace":
            lines.append(_policed_namespace(value))
        elif name in _FIELDS:
            lines.append(f"{_FIELDS[name]}={quoted(value)}")
    lines.append(f'timestamp>="{_rfc3339(since)}"')
    return "\n".join(lines)


def _absent(name: str) -> list[str]:
    """An empty group label: the group's denies lack that field, which GKE leaves out when empty.
    A namespace is absent for an endpoint that is not a pod (a node, an external address). Other
    empty labels add no condition: their fields are on every entry GKE writes (cluster, protocol)
    or may be read from elsewhere (the node, from the resource's labels)."""
    if name == "namespace":
        direction = "jsonPayload.connection.direction"
        return [
            f'(({direction}="ingress" AND NOT jsonPayload.dest.pod_namespace:*)'
            f' OR ({direction}="egress" AND NOT jsonPayload.src.pod_namespace:*))'
        ]
    if name in ("src_namespace", "dest_namespace", "dest_port"):
        return [f"NOT {_FIELDS[name]}:*"]
    return []


def history_filter(project: str, flow_filter: FlowFilter, start: datetime, end: datetime) -> str:
    """A filter for the denies `flow_filter` could match in [start, end), one condition per line.

    A superset, never less: endpoint globs cannot be said in the Logging query language, so the
    answer is narrowed exactly afterwards (`FlowFilter.matches`, through `history.flow_nodes`), and
    a condition is written only where nothing it leaves out could match. The bounds are widened to
    whole seconds (start down, end up), as the filter names seconds.
    """
    lines = [
        'resource.type="k8s_node"',
        f"logName={quoted(f'projects/{project}/logs/policy-action')}",
        'jsonPayload.disposition="deny"',
    ]
    if flow_filter.cluster:
        lines.append(f"resource.labels.cluster_name={quoted(flow_filter.cluster)}")
    if flow_filter.namespace:
        lines.append(_policed_namespace(flow_filter.namespace))
    if flow_filter.port is not None and flow_filter.port > 0:
        # Port 0 stands for "no port", which entries say by leaving the field out: not narrowed.
        lines.append(f"jsonPayload.connection.dest_port={flow_filter.port}")
    if flow_filter.protocol in _LOGGED_PROTOCOLS:
        lines.append(f"jsonPayload.connection.protocol={quoted(flow_filter.protocol)}")
    lines += _endpoint_conditions("src", flow_filter.src)
    lines += _endpoint_conditions("dest", flow_filter.dst)
    lines.append(f'timestamp>="{_rfc3339(_utc(start))}"')
    lines.append(f'timestamp<"{_rfc3339(_ceil_second(_utc(end)))}"')
    return "\n".join(lines)


def history_url(project: str, flow_filter: FlowFilter, start: datetime, end: datetime) -> str:
    """The Logs Explorer link for `history_filter`: what the answer read, to read further."""
    return explorer_url(project, history_filter(project, flow_filter, start, end), start, end)


def _policed_namespace(namespace: str) -> str:
    """The policed namespace: dest's for ingress, src's for egress."""
    ns = quoted(namespace)
    direction = "jsonPayload.connection.direction"
    return (
        f'(({direction}="ingress" AND jsonPayload.dest.pod_namespace={ns})'
        f' OR ({direction}="egress" AND jsonPayload.src.pod_namespace={ns}))'
    )


def _endpoint_conditions(side: str, glob: str | None) -> list[str]:
    """What can be said safely about the entries whose `side` label (`ns/workload`, `node/…`, an
    IP or a network's name, see `events.Endpoint`) matches `glob`: nothing when unsure."""
    if not glob:
        return []
    if not _GLOB_SPECIALS.intersection(glob) and _is_address(glob):
        # A bare address is an IP endpoint's label when no `networks` name covers it: its
        # `instance`, or the connection's address when it has none. (A `networks` name that is
        # itself an address would break this; names are words.)
        ip = quoted(glob)
        return [f"(jsonPayload.connection.{side}_ip={ip} OR jsonPayload.{side}.instance={ip})"]
    namespace, slash, _ = glob.partition("/")
    if not (slash and namespace) or _GLOB_SPECIALS.intersection(namespace):
        # A wildcard before the first `/` matches labels that no single field value describes.
        return []
    return [_pod_namespace(side, namespace)]


def _pod_namespace(side: str, namespace: str) -> str:
    # A label starts with `namespace/` for a pod of that namespace (Kubernetes names hold no `/`),
    # but also for a node (`node/…`) or a `networks` name holding a slash: endpoints that are not
    # pods are let through whatever their fields. GKE leaves out empty fields, so a pod is an
    # endpoint with a `pod_name`.
    return f"(jsonPayload.{side}.pod_namespace={quoted(namespace)} OR NOT jsonPayload.{side}.pod_name:*)"


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _utc(moment: datetime) -> datetime:
    # Naive datetimes are UTC here, as everywhere in the core.
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ceil_second(moment: datetime) -> datetime:
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def explorer_url(project: str, query: str, start: datetime, end: datetime) -> str:
    """A Logs Explorer link showing `query` between `start` and `end` (padded by a minute)."""
    pad = timedelta(minutes=1)
    window = f"{_rfc3339(start - pad)}/{_rfc3339(end + pad)}"
    return (
        f"{LOGS_EXPLORER};query={quote(query, safe='')};timeRange={quote(window, safe='')}"
        f"?project={quote(project)}"
    )


def _rfc3339(moment: datetime) -> str:
    # In UTC first: the `Z` says so, and an aware time in another zone would otherwise be
    # written as if it were UTC, hours off.
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")
