"""A deny storm as a large cluster produces it, for the benchmarks: many namespaces and flows, both
payload formats, pod, node and bare-IP endpoints, every protocol GKE logs, redeliveries.

Entries are LogEntries as the Pub/Sub sink delivers them (about 830 bytes each), generated lazily
from a seed, so a million of them never sit in memory at once. The mix is fixed by the seed: two
runs (or two commits) measure the same bytes.
"""

from __future__ import annotations

import itertools
import json
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PROTOCOLS = (("tcp", 80), ("udp", 14), ("icmp", 3), ("unknown", 3))
PORTS = (443, 8080, 5432, 6379, 9090, 53, 8443, 3306, 27017, 9200)


@dataclass(frozen=True, slots=True)
class StormShape:
    """How big the storm is: `entries` lines over `namespaces` namespaces and `flows` distinct flows."""

    entries: int = 200_000
    namespaces: int = 2_000
    flows: int = 50_000
    clusters: int = 3
    nodes: int = 100
    #: Share of entries Pub/Sub delivers twice (same insertId).
    redelivered: float = 0.02
    #: Share of entries in the older payload format (pod_name + pod_namespace only).
    old_format: float = 0.15
    #: Entries per second of log time.
    rate: int = 2_000
    seed: int = 11


def storm(shape: StormShape = StormShape()) -> Iterator[bytes]:
    """The entries, as message bodies, in arrival order."""
    rng = random.Random(shape.seed)
    flows = [_flow(rng, shape, n) for n in range(shape.flows)]
    serial = itertools.count()
    previous: bytes | None = None
    for n in range(shape.entries):
        if previous is not None and rng.random() < shape.redelivered:
            yield previous  # a redelivery: the same bytes, the same insertId
            continue
        flow = flows[
            min(int(rng.paretovariate(1.2)) - 1, shape.flows - 1) if n % 2 else rng.randrange(shape.flows)
        ]
        at = START + timedelta(seconds=n / shape.rate)
        previous = json.dumps(_entry(rng, shape, flow, at, next(serial)), separators=(",", ":")).encode()
        yield previous


@dataclass(frozen=True, slots=True)
class _Flow:
    cluster: int
    direction: str
    src: dict[str, str]
    dest: dict[str, str]
    src_ip: str
    dest_ip: str
    port: int | None
    protocol: str


def _flow(rng: random.Random, shape: StormShape, n: int) -> _Flow:
    protocol = rng.choices([p for p, _ in PROTOCOLS], [w for _, w in PROTOCOLS])[0]
    port = rng.choice(PORTS) if protocol in ("tcp", "udp") else None
    direction = "ingress" if rng.random() < 0.7 else "egress"
    policed = _pod(rng, shape, rng.randrange(shape.namespaces))
    peer_kind = rng.random()
    if peer_kind < 0.75:
        peer = _pod(rng, shape, rng.randrange(shape.namespaces))
    elif peer_kind < 0.8:
        peer = {"node_name": f"gke-cluster-pool-{rng.randrange(shape.nodes):03d}", "workload_kind": "Node"}
    else:
        peer = {"instance": _ip(rng, external=rng.random() < 0.5)}
    src, dest = (peer, policed) if direction == "ingress" else (policed, peer)
    if rng.random() < shape.old_format:
        src, dest = _old(src), _old(dest)
    return _Flow(n % shape.clusters, direction, src, dest, _ip(rng), _ip(rng), port, protocol)


def _pod(rng: random.Random, shape: StormShape, namespace: int) -> dict[str, str]:
    workload = f"svc-{rng.randrange(40):02d}"
    template = f"{rng.getrandbits(40):010x}"
    kind = rng.choice(("ReplicaSet", "ReplicaSet", "ReplicaSet", "Deployment", "StatefulSet", "DaemonSet"))
    name = f"{workload}-{template}" if kind == "ReplicaSet" else workload
    pod = {
        "ReplicaSet": f"{name}-{rng.getrandbits(25):05x}",
        "Deployment": f"{name}-{template}-{rng.getrandbits(25):05x}",
        "StatefulSet": f"{name}-{rng.randrange(5)}",
        "DaemonSet": f"{name}-{rng.getrandbits(25):05x}",
    }[kind]
    return {
        "pod_name": pod,
        "workload_kind": kind,
        "workload_name": name,
        "pod_namespace": f"team-{namespace:04d}",
        "namespace": f"team-{namespace:04d}",
    }


def _old(endpoint: dict[str, str]) -> dict[str, str]:
    """The older format: a pod is only `pod_name` and `pod_namespace`."""
    if "pod_name" not in endpoint:
        return endpoint
    return {"pod_name": endpoint["pod_name"], "pod_namespace": endpoint["pod_namespace"]}


def _ip(rng: random.Random, *, external: bool = False) -> str:
    if external:
        return f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return f"10.{rng.randrange(64, 128)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _entry(
    rng: random.Random, shape: StormShape, flow: _Flow, at: datetime, serial: int
) -> dict[str, object]:
    cluster = f"prod-{flow.cluster}"
    # GKE logs a deny on the node of the pod the policy applies to, so a flow between two given
    # pods is always logged by the same node. (The draw is kept so every other value stays as it
    # was in earlier runs of this storm.)
    rng.randrange(shape.nodes)
    policed_ip = flow.dest_ip if flow.direction == "ingress" else flow.src_ip
    node = f"gke-{cluster}-pool-{zlib.crc32(policed_ip.encode()) % shape.nodes:03d}"
    connection: dict[str, object] = {
        "src_ip": flow.src_ip,
        "dest_ip": flow.dest_ip,
        "protocol": flow.protocol,
        "direction": flow.direction,
    }
    if flow.port is not None:
        connection |= {"src_port": rng.randrange(32768, 61000), "dest_port": flow.port}
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "421Z"
    return {
        "insertId": f"{serial:012x}{rng.getrandbits(32):08x}",
        "logName": "projects/acme-prod/logs/policy-action",
        "timestamp": stamp,
        "receiveTimestamp": (at + timedelta(seconds=7)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z",
        "resource": {
            "type": "k8s_node",
            "labels": {
                "project_id": "acme-prod",
                "location": "europe-west1",
                "cluster_name": cluster,
                "node_name": node,
            },
        },
        "jsonPayload": {
            "connection": connection,
            "disposition": "deny",
            "src": flow.src,
            "dest": flow.dest,
            "count": 1 if rng.random() < 0.6 else rng.randrange(2, 60),
            "node_name": node,
        },
    }
