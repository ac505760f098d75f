"""Cloud Logging filters for a group of denies, and the Logs Explorer link that opens them.

Field paths follow the policy-action format (see the reference doc). `pod_namespace` is used for
namespaces because both payload formats carry it. The filter always names a timestamp: without one,
Cloud Logging silently reads only the last 24 hours.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import quote

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
            continue
        if name == "namespace":  # the policed namespace: dest's for ingress, src's for egress
            ns = quoted(value)
            direction = "jsonPayload.connection.direction"
            lines.append(
                f'(({direction}="ingress" AND jsonPayload.dest.pod_namespace={ns})'
                f' OR ({direction}="egress" AND jsonPayload.src.pod_namespace={ns}))'
            )
        elif name in _FIELDS:
            lines.append(f"{_FIELDS[name]}={quoted(value)}")
    lines.append(f'timestamp>="{_rfc3339(since)}"')
    return "\n".join(lines)


def explorer_url(project: str, query: str, start: datetime, end: datetime) -> str:
    """A Logs Explorer link showing `query` between `start` and `end` (padded by a minute)."""
    pad = timedelta(minutes=1)
    window = f"{_rfc3339(start - pad)}/{_rfc3339(end + pad)}"
    return (
        f"{LOGS_EXPLORER};query={quote(query, safe='')};timeRange={quote(window, safe='')}"
        f"?project={quote(project)}"
    )


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
