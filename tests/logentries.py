"""One LogEntry builder for every test: a `policy-action` entry as Cloud Logging delivers it (the
envelope and jsonPayload of the reference doc), with every part a test may vary as a keyword.
Each test module keeps its own defaults by wrapping this with `functools.partial`."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.events import RawMessage

_serial = itertools.count()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def log_entry(
    *,
    at: datetime | None = None,
    insert_id: str | None = None,
    prefix: str = "e",
    source: str = "web",
    source_namespace: str = "checkout",
    namespace: str = "payments",
    port: int | None = 443,
    protocol: str = "tcp",
    direction: str = "ingress",
    disposition: str = "deny",
    count: int = 1,
    project: str | None = "acme",
    cluster: str = "prod",
    location: str | None = None,
    node: str = "n1",
    ips: tuple[str, str] | None = None,
    src_port: int | None = None,
) -> dict[str, Any]:
    """A deny (by default) from pod `source` in `source_namespace` to pod `api` in `namespace`.
    `at` defaults to ten seconds ago; `insert_id` to a fresh `<prefix><serial>`."""
    moment = at or datetime.now(UTC) - timedelta(seconds=10)
    connection: dict[str, Any] = {"protocol": protocol, "direction": direction}
    if ips:
        connection.update(src_ip=ips[0], dest_ip=ips[1])
    if src_port is not None:
        connection["src_port"] = src_port
    if port is not None:
        connection["dest_port"] = port
    labels = {"project_id": project, "location": location, "cluster_name": cluster, "node_name": node}
    return {
        "insertId": insert_id or f"{prefix}{next(_serial)}",
        "logName": f"projects/{project or 'p'}/logs/policy-action",
        "timestamp": rfc3339(moment),
        "resource": {"type": "k8s_node", "labels": {k: v for k, v in labels.items() if v is not None}},
        "jsonPayload": {
            "connection": connection,
            "disposition": disposition,
            "src": {"pod_name": f"{source}-6d9f8b7c5d-x7k2p", "namespace": source_namespace},
            "dest": {"pod_name": "api-7b78d7c957-zkn54", "namespace": namespace},
            "count": count,
        },
    }


def encoded(**fields: Any) -> bytes:
    """`log_entry(**fields)` as the bytes of a Pub/Sub message."""
    return json.dumps(log_entry(**fields)).encode()


def raw_message(message_id: str | None = None, **fields: Any) -> RawMessage:
    return RawMessage(encoded(**fields), message_id)
