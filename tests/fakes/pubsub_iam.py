"""A fake of the Pub/Sub calls the emulator cannot answer as Pub/Sub does: the two `netlog-bot
check` makes, `Subscriber.GetSubscription` and `IAMPolicy.TestIamPermissions` (the emulator has no
IAM: it answers UNIMPLEMENTED to the latter and lets everyone get everything), and `Subscriber.Pull`
on an idle subscription (Pub/Sub holds it past the caller's deadline; the emulator answers empty).

A real gRPC server on loopback, reached by the real `pubsub_v1.SubscriberClient` through
PUBSUB_EMULATOR_HOST (a plaintext channel, no credentials), so requests and answers go through the
client's own protobuf encoding and error mapping. Faithful where the check can tell:
- GetSubscription answers the `Subscription` (name, topic, ack deadline), NOT_FOUND `Resource not
  found (resource=S).` for an unknown one, and PERMISSION_DENIED `User not authorized to perform
  this action.` when the caller lacks `pubsub.subscriptions.get` (roles/pubsub.subscriber does);
- TestIamPermissions answers the subset of the asked permissions the caller holds on the
  subscription (`granted`, by default what roles/pubsub.subscriber grants), and NOT_FOUND, as
  GetSubscription, for an unknown subscription;
- Pull holds every call until the caller's deadline has passed, as on a subscription with nothing
  to deliver (so the client sees DEADLINE_EXCEEDED), and counts the calls;
- every other method is UNIMPLEMENTED, as gRPC answers for a method a server does not have.
"""

from __future__ import annotations

import threading
from concurrent import futures
from types import TracebackType
from typing import Any, Self

import grpc  # type: ignore[import-untyped]
from google.iam.v1 import iam_policy_pb2  # type: ignore[import-untyped]
from google.pubsub_v1.types import pubsub

#: What roles/pubsub.subscriber grants on a subscription (not pubsub.subscriptions.get).
SUBSCRIBER_ROLE = frozenset({"pubsub.subscriptions.consume"})


class FakePubSubIam:
    def __init__(self) -> None:
        self.subscriptions: dict[str, str] = {}  # subscription path -> topic path
        self.granted: set[str] = set(SUBSCRIBER_ROLE)  # the caller's permissions on each subscription
        self._server: grpc.Server | None = None
        self._stopping = threading.Event()
        self.port = 0
        self.pulls = 0
        self.iam_tests = 0

    @property
    def host(self) -> str:
        """What PUBSUB_EMULATOR_HOST takes."""
        return f"127.0.0.1:{self.port}"

    def add_subscription(self, subscription: str, topic: str) -> None:
        self.subscriptions[subscription] = topic

    def start(self) -> Self:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "google.pubsub.v1.Subscriber",
                    {
                        "GetSubscription": grpc.unary_unary_rpc_method_handler(
                            self._get_subscription,
                            request_deserializer=pubsub.GetSubscriptionRequest.deserialize,
                            response_serializer=pubsub.Subscription.serialize,
                        ),
                        "Pull": grpc.unary_unary_rpc_method_handler(
                            self._pull,
                            request_deserializer=pubsub.PullRequest.deserialize,
                            response_serializer=pubsub.PullResponse.serialize,
                        ),
                    },
                ),
                grpc.method_handlers_generic_handler(
                    "google.iam.v1.IAMPolicy",
                    {
                        "TestIamPermissions": grpc.unary_unary_rpc_method_handler(
                            self._test_iam_permissions,
                            request_deserializer=iam_policy_pb2.TestIamPermissionsRequest.FromString,
                            response_serializer=iam_policy_pb2.TestIamPermissionsResponse.SerializeToString,
                        )
                    },
                ),
            )
        )
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- the methods

    def _get_subscription(self, request: Any, context: grpc.ServicerContext) -> Any:
        topic = self._known(request.subscription, context)
        if "pubsub.subscriptions.get" not in self.granted:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "User not authorized to perform this action.")
        return pubsub.Subscription(name=request.subscription, topic=topic, ack_deadline_seconds=60)

    def _pull(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._known(request.subscription, context)
        self.pulls += 1
        remaining = context.time_remaining()
        self._stopping.wait(60.0 if remaining is None else remaining + 0.2)
        return pubsub.PullResponse()

    def _test_iam_permissions(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.iam_tests += 1
        self._known(request.resource, context)
        held = [permission for permission in request.permissions if permission in self.granted]
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=held)

    def _known(self, subscription: str, context: grpc.ServicerContext) -> str:
        if subscription not in self.subscriptions:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Resource not found (resource={subscription.rsplit('/', maxsplit=1)[-1]}).",
            )
        return self.subscriptions[subscription]
