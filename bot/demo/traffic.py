"""Generated but realistic policy-action traffic for `netlog-bot demo`.

Shapes follow GKE's logger (see the reference doc): both payload formats, pods from ReplicaSets
and Deployments, nodes, bare IPs, ICMP without ports, `unknown` protocol, denies folded with a
`count`, allow entries with policies. Pub/Sub's at-least-once delivery is played too (some
messages arrive twice) and so are messages nobody should have sent (junk, other logs).
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
#: Denied packet -> Pub/Sub takes 5-20 s (5 s aggregation, fluent-bit flush, the sink).
LATENCY = timedelta(seconds=12)

#: The Google Cloud project the generated entries come from.
PROJECT = "demo-project"


@dataclass(frozen=True, slots=True)
class Arrival:
    at: datetime
    data: bytes
    message_id: str


def pod(namespace: str, deployment: str, template_hash: str, suffix: str) -> dict[str, str]:
    return {
        "pod_name": f"{deployment}-{template_hash}-{suffix}",
        "workload_kind": "ReplicaSet",
        "workload_name": f"{deployment}-{template_hash}",
        "pod_namespace": namespace,
        "namespace": namespace,
    }


CLUSTERS = {
    "prod-eu": (
        "europe-west1",
        [
            "gke-prod-eu-pool-1-9c2d-4kq1",
            "gke-prod-eu-pool-1-9c2d-7mzx",
            "gke-prod-eu-pool-1-9c2d-b2lw",
        ],
    ),
    "prod-us": ("us-central1", ["gke-prod-us-pool-2-31fa-h8dd", "gke-prod-us-pool-2-31fa-q2pc"]),
    "staging": ("europe-west4", ["gke-staging-default-pool-77aa-x1c9"]),
}
CHECKOUT_WEB = pod("checkout", "web", "6d9f8b7c5d", "x7k2p")
PAYMENTS_API = pod("payments", "api", "7b78d7c957", "zkn54")
PROMETHEUS = pod("monitoring", "prometheus", "5c8d9f6b4", "q9wrt")
REPORTS = {
    "pod_name": "report-generator-28471930-8xk2c",
    "workload_kind": "Job",
    "workload_name": "report-generator-28471930",
    "pod_namespace": "batch",
    "namespace": "batch",
}
CHECKOUT_DB = {
    "pod_name": "db-0",
    "workload_kind": "StatefulSet",
    "workload_name": "db",
    "pod_namespace": "checkout",
    "namespace": "checkout",
}


class TrafficBuilder:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.arrivals: list[Arrival] = []
        self.serial = 0

    def entry(
        self, cluster: str, at: datetime, payload: dict[str, Any], node: str | None = None
    ) -> dict[str, Any]:
        location, nodes = CLUSTERS[cluster]
        node = node or self.random.choice(nodes)
        self.serial += 1
        payload = {**payload, "node_name": node}
        return {
            "insertId": f"demo{self.serial:06d}",
            "logName": f"projects/{PROJECT}/logs/policy-action",
            "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z",
            "receiveTimestamp": (at + timedelta(seconds=8)).isoformat().replace("+00:00", "Z"),
            "resource": {
                "type": "k8s_node",
                "labels": {
                    "project_id": PROJECT,
                    "location": location,
                    "cluster_name": cluster,
                    "node_name": node,
                },
            },
            "jsonPayload": payload,
        }

    def send(self, at: datetime, data: bytes) -> None:
        jitter = timedelta(seconds=self.random.uniform(0, 8))
        self.arrivals.append(Arrival(at + LATENCY + jitter, data, f"m{len(self.arrivals) + 1}"))

    def deny(
        self,
        cluster: str,
        at: datetime,
        src: dict[str, Any],
        dest: dict[str, Any],
        connection: dict[str, Any],
        count: int,
    ) -> dict[str, Any]:
        entry = self.entry(
            cluster,
            at,
            {
                "connection": connection,
                "disposition": "deny",
                "src": src,
                "dest": dest,
                "count": count,
            },
        )
        self.send(at, json.dumps(entry).encode())
        return entry


def tcp(src_ip: str, dest_ip: str, port: int, direction: str, protocol: str = "tcp") -> dict[str, Any]:
    return {
        "src_ip": src_ip,
        "dest_ip": dest_ip,
        "src_port": 40000 + port % 1000,
        "dest_port": port,
        "protocol": protocol,
        "direction": direction,
    }


def generate(seed: int = 7) -> list[Arrival]:
    """About half an hour of traffic across three clusters, in arrival order."""
    b = TrafficBuilder(seed)
    _payments_storm(b)
    _metadata_and_external(b)
    _prod_us(b)
    _staging(b)
    _allows_duplicates_and_junk(b)
    return sorted(b.arrivals, key=lambda arrival: arrival.at)


def _payments_storm(b: TrafficBuilder) -> None:
    # A rollout in checkout points at payments/api before the NetworkPolicy allows it: a storm.
    for tick in range(0, 18 * 60, 5):
        at = START + timedelta(minutes=2, seconds=tick)
        b.deny(
            "prod-eu",
            at,
            CHECKOUT_WEB,
            PAYMENTS_API,
            tcp("10.84.1.8", "10.84.0.11", 8080, "ingress"),
            b.random.randint(20, 80),
        )
    for tick in range(0, 6 * 60, 30):  # Prometheus starts scraping a port nobody opened for it
        at = START + timedelta(minutes=8, seconds=tick)
        b.deny(
            "prod-eu",
            at,
            PROMETHEUS,
            PAYMENTS_API,
            tcp("10.84.2.4", "10.84.0.11", 9090, "ingress"),
            1,
        )


def _metadata_and_external(b: TrafficBuilder) -> None:
    for minute in range(5, 12):
        at = START + timedelta(minutes=minute, seconds=17)
        b.deny(
            "prod-eu",
            at,
            PAYMENTS_API,
            {"instance": "203.0.113.10"},
            tcp("10.84.0.11", "203.0.113.10", 443, "egress"),
            3,
        )
        b.deny(
            "prod-eu",
            at,
            REPORTS,
            {"instance": "169.254.169.254"},
            tcp("10.84.3.9", "169.254.169.254", 80, "egress"),
            2,
        )


def _prod_us(b: TrafficBuilder) -> None:
    for minute in range(14, 19):
        at = START + timedelta(minutes=minute)
        icmp = {
            "src_ip": "10.20.1.5",
            "dest_ip": "10.20.2.7",
            "protocol": "icmp",
            "direction": "ingress",
        }
        b.deny("prod-us", at, CHECKOUT_WEB, CHECKOUT_DB, icmp, 4)
        sctp = {
            "src_ip": "10.20.1.5",
            "dest_ip": "10.20.2.7",
            "protocol": "unknown",
            "direction": "ingress",
        }
        b.deny("prod-us", at + timedelta(seconds=20), CHECKOUT_WEB, CHECKOUT_DB, sctp, 1)
        node = {"node_name": "gke-prod-us-pool-2-31fa-q2pc", "workload_kind": "Node"}
        b.deny(
            "prod-us",
            at + timedelta(seconds=40),
            node,
            CHECKOUT_WEB,
            tcp("10.128.0.9", "10.20.1.5", 8080, "ingress"),
            6,
        )


def _staging(b: TrafficBuilder) -> None:
    # The older payload format: only pod_name and pod_namespace.
    for minute in range(20, 24):
        at = START + timedelta(minutes=minute, seconds=5)
        src = {"pod_name": "loadgen-5689846f5b-cqqsj", "pod_namespace": "default"}
        dest = {"pod_name": "frontend-745c798fc9-hzpxt", "pod_namespace": "default"}
        b.deny("staging", at, src, dest, tcp("10.40.1.8", "10.40.0.11", 80, "ingress"), 12)


def _allows_duplicates_and_junk(b: TrafficBuilder) -> None:
    allow = b.entry(
        "prod-eu",
        START + timedelta(minutes=3),
        {
            "connection": tcp("10.84.1.7", "10.84.0.11", 8080, "ingress"),
            "disposition": "allow",
            "policies": [{"kind": "NetworkPolicy", "name": "allow-checkout", "namespace": "payments"}],
            "src": CHECKOUT_WEB,
            "dest": PAYMENTS_API,
            "count": 1,
        },
    )
    b.send(START + timedelta(minutes=3), json.dumps(allow).encode())
    redelivered = b.deny(
        "prod-eu",
        START + timedelta(minutes=4),
        CHECKOUT_WEB,
        PAYMENTS_API,
        tcp("10.84.1.8", "10.84.0.11", 8080, "ingress"),
        50,
    )
    for delay in (1, 2):  # Pub/Sub delivers at least once: the same insertId again
        b.send(START + timedelta(minutes=4 + delay), json.dumps(redelivered).encode())
    pushed = b.entry(
        "prod-eu",
        START + timedelta(minutes=9),
        {
            "connection": tcp("10.84.1.8", "10.84.0.11", 8080, "ingress"),
            "disposition": "deny",
            "src": CHECKOUT_WEB,
            "dest": PAYMENTS_API,
            "count": 9,
        },
    )
    envelope = {
        "message": {
            "data": base64.b64encode(json.dumps(pushed).encode()).decode(),
            "messageId": "push-1",
        },
        "subscription": "projects/demo-project/subscriptions/netlog-push",
    }
    b.send(START + timedelta(minutes=9), json.dumps(envelope).encode())
    at = START + timedelta(minutes=6)
    b.send(at, b"\x00\x01 not json at all")
    b.send(
        at,
        json.dumps({**b.entry("prod-eu", at, {}), "logName": "projects/demo-project/logs/kubelet"}).encode(),
    )
    b.send(at, json.dumps(b.entry("prod-eu", at, {"disposition": "deny", "count": 1})).encode())
    bad_port = tcp("10.84.1.8", "10.84.0.11", 8080, "ingress") | {"dest_port": "http"}
    b.send(
        at,
        json.dumps(
            b.entry(
                "prod-eu",
                at,
                {
                    "connection": bad_port,
                    "disposition": "deny",
                    "src": CHECKOUT_WEB,
                    "dest": PAYMENTS_API,
                },
            )
        ).encode(),
    )
