"""Helpers for tests that talk to the Pub/Sub emulator: LogEntry bodies, publishing, waiting."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import pubsub_v1

from bot.adapters.store import Store
from tests.store_queries import event_count

PROJECT = "test-project"
ACK_DEADLINE = 10  # the emulator's minimum; what a lost ack would cost before redelivery


def log_entry(number: int) -> bytes:
    at = datetime(2026, 2, 1, 12, 0, tzinfo=UTC) + timedelta(milliseconds=number)
    entry = {
        "insertId": f"ins-{number:06d}",
        "logName": f"projects/{PROJECT}/logs/policy-action",
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "resource": {
            "type": "k8s_node",
            "labels": {"cluster_name": "prod", "location": "eu", "node_name": "n1"},
        },
        "jsonPayload": {
            "connection": {
                "src_ip": "10.0.0.1",
                "dest_ip": "10.0.0.2",
                "src_port": 40000,
                "dest_port": 8000 + number % 7,
                "protocol": "tcp",
                "direction": "ingress",
            },
            "disposition": "deny",
            "src": {"pod_name": "web-6d9f8b7c5d-x7k2p", "namespace": "checkout"},
            "dest": {"pod_name": "api-7b78d7c957-zkn54", "namespace": f"ns{number % 5}"},
            "count": 1 + number % 3,
        },
    }
    return json.dumps(entry).encode()


JUNK = [b"not json", b'{"logName": "projects/p/logs/kubelet", "jsonPayload": {}}', b"[1, 2, 3]", b"\xff\xfe"]


def publish(topic: str, bodies: Sequence[bytes]) -> None:
    publisher = pubsub_v1.PublisherClient()
    futures = [publisher.publish(topic, body) for body in bodies]
    for future in futures:
        future.result(timeout=30)


def wait_for(condition: Callable[[], bool], store: Store, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(
                f"not met within {timeout} s: "
                f"{event_count(store)} events, {store.events.reject_count()} rejects stored"
            )
        time.sleep(0.05)
