"""The Pub/Sub subscriber: streaming pull with flow control, batched durable writes, ack after commit.

The client library calls `_receive` on its own threads; we only queue there. One writer thread
drains the queue in batches and hands each batch to `store_batch` (one store transaction), then
acks. If the store fails, the batch is nacked and Pub/Sub redelivers it; the store's dedupe on
insertId makes redelivery harmless.

Shutdown closes the stream first (waiting for callbacks in flight), then stores and acks what was
already taken. Acks after the close go through the unary Acknowledge call: the stream's own ack
path is gone by then, and acks sent into it are silently dropped. Nothing taken is nacked, because
a nack during shutdown would be redelivered into the closing stream.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from google.api_core import exceptions as google_errors
from google.cloud import pubsub_v1

from bot.core.events import RawMessage

log = logging.getLogger(__name__)

StoreBatch = Callable[[Sequence[RawMessage]], object]
#: Acknowledge takes a bounded number of ids per call.
_ACK_CHUNK = 1000


class SubscriptionError(RuntimeError):
    """The subscription cannot be read; the message says what to fix."""


class Subscriber:
    """Pulls the subscription into `store_batch` until stopped; acks a batch once it is stored."""

    def __init__(
        self,
        subscription: str,
        store_batch: StoreBatch,
        *,
        max_outstanding: int = 2000,
        batch_size: int = 500,
        max_batch_wait: float = 0.25,
        lease_seconds: int = 20,
    ) -> None:
        self.subscription = subscription
        self.store_batch = store_batch
        self.batch_size = batch_size
        self.max_batch_wait = max_batch_wait
        # Flow control bounds memory: the library stops pulling once this many are unacked.
        # The lease extension also sets the stream's ack deadline: what a crashed replica's
        # in-flight messages cost before Pub/Sub hands them to someone else.
        self._flow = pubsub_v1.types.FlowControl(
            max_messages=max_outstanding,
            max_bytes=64 * 1024 * 1024,
            min_duration_per_lease_extension=lease_seconds,
            max_duration_per_lease_extension=lease_seconds,
        )
        self._queue: queue.Queue[Any] = queue.Queue()
        self._draining = threading.Event()
        self._stream_closed = False
        self._ack_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._client: pubsub_v1.SubscriberClient | None = None
        self._future: Any = None
        self._failure: BaseException | None = None
        self.stopped = threading.Event()
        self.acked = 0

    def start(self) -> None:
        self._client = pubsub_v1.SubscriberClient()
        self._writer = threading.Thread(target=self._write_loop, name="netlog-ingest-writer", daemon=True)
        self._writer.start()
        self._future = self._client.subscribe(
            self.subscription, self._queue.put, flow_control=self._flow, await_callbacks_on_shutdown=True
        )
        self._future.add_done_callback(self._stream_done)
        log.info(
            "ingest: pulling from %s (lease extension %d s, at most %d messages outstanding)",
            self.subscription,
            self._flow.max_duration_per_lease_extension,
            self._flow.max_messages,
        )

    def _stream_done(self, future: Any) -> None:
        error = future.exception() if not future.cancelled() else None
        if error is not None:
            self._failure = error
            self.stopped.set()

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch:
                self._write(batch)
            elif self._draining.is_set() and self._queue.empty():
                return

    def _next_batch(self) -> list[Any]:
        batch: list[Any] = []
        deadline = time.monotonic() + self.max_batch_wait
        while len(batch) < self.batch_size:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=timeout))
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[Any]) -> None:
        try:
            self.store_batch([RawMessage(bytes(m.data), m.message_id) for m in batch])
        except Exception:
            log.exception("ingest: could not store %d messages; they will be redelivered", len(batch))
            with self._ack_lock:
                if not self._stream_closed:
                    for message in batch:
                        message.nack()
            time.sleep(1.0)  # the store is unwell: don't spin through redeliveries
            return
        with self._ack_lock:
            if self._stream_closed:
                self._acknowledge([message.ack_id for message in batch])
            else:
                for message in batch:
                    message.ack()  # also frees the flow-control slot
        self.acked += len(batch)

    def _acknowledge(self, ack_ids: list[str]) -> None:
        assert self._client is not None
        for start in range(0, len(ack_ids), _ACK_CHUNK):
            chunk = ack_ids[start : start + _ACK_CHUNK]
            self._client.acknowledge(subscription=self.subscription, ack_ids=chunk)

    def wait(self) -> None:
        """Blocks until `stop()` or a stream failure; raises `SubscriptionError` for the latter."""
        self.stopped.wait()
        if self._failure is not None:
            raise SubscriptionError(
                describe_pubsub_error(self._failure, self.subscription)
            ) from self._failure

    def stop(self, timeout: float = 20.0) -> None:
        """Close the stream, then store and ack everything already taken."""
        if self._future is not None:
            with self._ack_lock:
                # Acks already handed to the stream are flushed by its close; later ones go unary.
                self._stream_closed = True
            self._future.cancel()
            try:
                self._future.result(timeout=timeout)
            except Exception as error:  # a stream that already failed reports it here too
                log.debug("ingest: stream closed with %r", error)
        self._draining.set()
        if self._writer is not None:
            self._writer.join(timeout)
        if self._client is not None:
            self._client.close()
        self.stopped.set()
        log.info("ingest: stopped after acking %d messages", self.acked)


def describe_pubsub_error(error: BaseException, subscription: str) -> str:
    if isinstance(error, google_errors.NotFound):
        return (
            f"the subscription {subscription} does not exist: create it with "
            "`gcloud pubsub subscriptions create SUBSCRIPTION --topic=TOPIC --ack-deadline=60` "
            "(see the README, 'Feed it real logs')"
        )
    if isinstance(error, google_errors.PermissionDenied):
        return (
            f"the bot's identity may not read {subscription}: "
            "grant it roles/pubsub.subscriber on the subscription"
        )
    if isinstance(error, google_errors.Unauthenticated):
        return "Google credentials are missing or expired: set up application default credentials for the bot"
    return f"Pub/Sub streaming pull on {subscription} failed: {error}"
