"""The fake Pub/Sub IAM surface, driven by the real SubscriberClient over gRPC, answers as Pub/Sub does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.api_core import exceptions as google_errors
from google.cloud import pubsub_v1

from tests.fakes.pubsub_iam import FakePubSubIam

SUBSCRIPTION = "projects/p/subscriptions/s"
CONSUME = "pubsub.subscriptions.consume"
Connected = tuple[FakePubSubIam, pubsub_v1.SubscriberClient]


@pytest.fixture
def connected(monkeypatch: pytest.MonkeyPatch) -> Iterator[Connected]:
    with FakePubSubIam() as fake:
        fake.add_subscription(SUBSCRIPTION, "projects/p/topics/t")
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", fake.host)
        subscriber = pubsub_v1.SubscriberClient()
        yield fake, subscriber
        subscriber.close()


def test_permissions_are_the_held_subset(connected: Connected) -> None:
    fake, subscriber = connected
    asked = {"resource": SUBSCRIPTION, "permissions": [CONSUME, "pubsub.subscriptions.delete"]}
    assert list(subscriber.test_iam_permissions(request=asked, timeout=5).permissions) == [CONSUME]
    fake.granted = set()
    assert list(subscriber.test_iam_permissions(request=asked, timeout=5).permissions) == []
    with pytest.raises(google_errors.NotFound, match=r"Resource not found \(resource=nope\)"):
        subscriber.test_iam_permissions(request=asked | {"resource": "projects/p/subscriptions/nope"})


def test_get_needs_its_own_permission(connected: Connected) -> None:
    fake, subscriber = connected
    with pytest.raises(google_errors.PermissionDenied):  # roles/pubsub.subscriber cannot describe
        subscriber.get_subscription(subscription=SUBSCRIPTION, timeout=5, retry=None)
    fake.granted.add("pubsub.subscriptions.get")
    found = subscriber.get_subscription(subscription=SUBSCRIPTION, timeout=5, retry=None)
    assert (found.name, found.topic) == (SUBSCRIPTION, "projects/p/topics/t")
    with pytest.raises(google_errors.NotFound):
        subscriber.get_subscription(subscription="projects/p/subscriptions/nope", timeout=5, retry=None)
    with pytest.raises(google_errors.MethodNotImplemented):  # anything else: the server lacks it
        subscriber.acknowledge(subscription=SUBSCRIPTION, ack_ids=["a"], timeout=5, retry=None)


def test_an_idle_pull_is_held_past_the_caller_s_deadline(connected: Connected) -> None:
    fake, subscriber = connected
    with pytest.raises(google_errors.DeadlineExceeded):
        subscriber.pull(subscription=SUBSCRIPTION, max_messages=1, timeout=0.3, retry=None)
    with pytest.raises(google_errors.NotFound):
        subscriber.pull(subscription="projects/p/subscriptions/nope", max_messages=1, timeout=5, retry=None)
    assert fake.pulls == 1
