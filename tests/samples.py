"""The reference doc's sample payloads (section 2, verbatim) and its LogEntry envelope, shared by
the parser tests and the CLI tests.

`in_envelope` wraps a payload given verbatim in the doc's exact envelope (receiveTimestamp, its
project, location and node), which the parser tests check field by field. Every other test builds
its entries with `tests.logentries.log_entry`."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

# Section 2 of the reference doc, copied verbatim (one payload per line).
SAMPLE_LINES = """\
{"connection":{"src_ip":"10.84.1.8","dest_ip":"10.84.0.11","src_port":45084,"dest_port":8080,"protocol":"tcp","direction":"ingress"},"disposition":"deny","src":{"pod_name":"client-deny-5689846f5b-cqqsj","workload_kind":"ReplicaSet","workload_name":"client-deny-5689846f5b","pod_namespace":"default","namespace":"default"},"dest":{"pod_name":"test-service-745c798fc9-hzpxt","workload_kind":"ReplicaSet","workload_name":"test-service-745c798fc9","pod_namespace":"default","namespace":"default"},"count":1,"timestamp":"2020-06-13T21:30:22.292379064Z"}
{"connection":{"src_ip":"10.84.1.7","dest_ip":"10.84.0.11","src_port":55644,"dest_port":8080,"protocol":"tcp","direction":"ingress"},"disposition":"allow","policies":[{"kind":"NetworkPolicy","name":"np","namespace":"default"}],"src":{"pod_name":"client-allow-7b78d7c957-zkn54","workload_kind":"ReplicaSet","workload_name":"client-allow-7b78d7c957","pod_namespace":"default","namespace":"default"},"dest":{"pod_name":"test-service-745c798fc9-hzpxt","workload_kind":"ReplicaSet","workload_name":"test-service-745c798fc9","pod_namespace":"default","namespace":"default"},"count":1,"timestamp":"2020-06-13T21:29:31.445836587Z"}
{"connection":{"src_ip":"10.84.1.6","dest_ip":"10.128.0.9","src_port":45084,"dest_port":22,"protocol":"tcp","direction":"ingress"},"disposition":"deny","src":{"pod_name":"client-deny-5689846f5b-cqqsj","workload_kind":"ReplicaSet","workload_name":"client-deny-5689846f5b","pod_namespace":"default","namespace":"default"},"dest":{"node_name":"gke-demo-default-pool-e8df3298-412p","workload_kind":"Node"},"count":1,"timestamp":"2020-06-13T21:32:00.000000001Z"}
{"src":{"namespace":"default","pod_namespace":"default","workload_name":"client-allow","pod_name":"client-allow-ffdfccbd5-d4cqp","workload_kind":"Deployment"},"dest":{"instance":"169.254.169.254"},"connection":{"direction":"egress","dest_port":53,"src_ip":"10.84.1.6","src_port":45084,"protocol":"udp","dest_ip":"169.254.169.254"},"disposition":"allow","policies":[{"kind":"FQDNNetworkPolicy","namespace":"default","name":"client-allow"}],"count":1,"timestamp":"2020-06-13T21:32:00.000000001Z"}
{"connection":{"src_ip":"10.84.1.8","dest_ip":"10.84.0.11","src_port":45084,"dest_port":8080,"protocol":"tcp","direction":"ingress"},"disposition":"deny","src":{"pod_name":"client-deny-5689846f5b-cqqsj","pod_namespace":"default"},"dest":{"pod_name":"test-service-745c798fc9-hzpxt","pod_namespace":"default"},"count":1,"timestamp":"2020-06-13T21:30:22.292379064Z"}
""".splitlines()
SAMPLES: list[dict[str, Any]] = [json.loads(line) for line in SAMPLE_LINES]
LOG_NAME = "projects/my-project/logs/policy-action"
NODE = "gke-demo-default-pool-e8df3298-412p"


def in_envelope(
    payload: Mapping[str, Any], insert_id: str = "abc123def456", timestamp: str | None = None
) -> dict[str, Any]:
    """The reference doc's LogEntry envelope around `payload`.

    Its `timestamp` is the payload's, as fluent-bit most probably moves it there (the doc's inference)."""
    return {
        "insertId": insert_id,
        "logName": LOG_NAME,
        "timestamp": timestamp or payload.get("timestamp", "2020-06-13T21:30:22.292379064Z"),
        "receiveTimestamp": "2020-06-13T21:30:30.123456789Z",
        "resource": {
            "type": "k8s_node",
            "labels": {
                "project_id": "my-project",
                "location": "us-central1",
                "cluster_name": "demo",
                "node_name": NODE,
            },
        },
        "jsonPayload": copy.deepcopy(dict(payload)),
    }
