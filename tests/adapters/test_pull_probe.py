"""A Pull that runs to its deadline means an idle subscription or a network that answers nothing.
The subscriber tells them apart with a probe any reachable Pub/Sub answers, so `/readyz` does not
say "pulling" while every packet is dropped, and an idle subscription stays ready."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from google.cloud import pubsub_v1

from bot.adapters.pubsub import PullHealth, Subscriber
from tests.fakes.pubsub_iam import FakePubSubIam


def ignore(_batch: object) -> None:
    raise AssertionError("nothing should be pulled")


def eventually(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A TCP port that accepts connections and never says a word, as a firewall dropping the
    replies (or a proxy that hangs) looks to gRPC."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_pulls_that_only_time_out_against_a_silent_network_are_not_ready(
    silent_host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", silent_host)
    subscription = "projects/test-project/subscriptions/netlog-bot"
    ingest = Subscriber(subscription, ignore, pullers=1, probe_after=0.0)
    ingest.health = PullHealth(subscription, failing_after=1.0)
    ingest.start()
    try:
        assert eventually(lambda: "failing" in ingest.health.ready(time.monotonic())[1])
        ready, why = ingest.health.ready(time.monotonic())
        assert not ready
        assert "Deadline Exceeded" in why
    finally:
        ingest.stop()


def test_an_idle_subscription_stays_ready_past_the_probe_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pub/Sub holds an idle Pull past the caller's deadline, so every Pull of a quiet subscription
    times out; the probe, answered, keeps it ready."""
    path = "projects/test-project/subscriptions/netlog-bot"
    with FakePubSubIam() as pubsub:
        pubsub.add_subscription(path, "projects/test-project/topics/netlog")
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub.host)
        ingest = Subscriber(path, ignore, pullers=2, probe_after=0.5, pull_deadline=0.3)
        ingest.health = PullHealth(path, failing_after=1.0)
        ingest.start()
        try:
            assert eventually(lambda: pubsub.iam_tests >= 3, timeout=20)
            assert ingest.health.ready(time.monotonic()) == (True, "pulling")
            assert ingest.health.total_failures == 0
            assert pubsub.pulls > pubsub.iam_tests  # a probe at most every 0.5 s, not one per Pull
        finally:
            ingest.stop()


def test_the_emulator_answers_the_probe_with_unimplemented_which_counts_as_an_answer(
    subscription: tuple[str, str],
) -> None:
    _, path = subscription
    ingest = Subscriber(path, ignore)
    ingest._client = pubsub_v1.SubscriberClient()
    try:
        assert ingest._probe() is None
    finally:
        ingest._client.close()
