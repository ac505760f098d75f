"""Helpers for tests that talk to the Pub/Sub emulator: a numbered stream of entries, publishing, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import pubsub_v1

from bot.adapters.store import Store
from tests.logentries import encoded
from tests.store_queries import event_count

PROJECT = "test-project"
ACK_DEADLINE = 10  # the emulator's minimum; what a lost ack would cost before redelivery


def numbered_entry(number: int) -> bytes:
    """Entry `number` of a stream: insertId `ins-NNNNNN`, a millisecond apart, 5 namespaces, 7 ports."""
    return encoded(
        at=datetime(2026, 2, 1, 12, 0, tzinfo=UTC) + timedelta(milliseconds=number),
        insert_id=f"ins-{number:06d}",
        namespace=f"ns{number % 5}",
        port=8000 + number % 7,
        count=1 + number % 3,
        project=PROJECT,
        location="eu",
        ips=("10.0.0.1", "10.0.0.2"),
        src_port=40000,
    )


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
