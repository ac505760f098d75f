"""The Pub/Sub subscriber: batched unary pulls, batched durable writes, bulk ack after commit.

Why not streaming pull: its client calls back once per message, and that callback caps near 2,000
messages/s on a 2-core machine whatever its flow control; a deny storm is ten times that. So:

- `pullers` threads each call Pull for up to their share of `max_outstanding` (at most 1,000, the
  API's limit; the emulator answers ~100 at a time), and only while fewer than `max_outstanding`
  messages are held: that cap is what bounds memory.
- `writers` threads gather what was pulled into batches of `batch_size`, hand each to
  `store_batch` (one store transaction), and only then acknowledge it in bulk. A crash before the
  ack means redelivery, which the store's dedupe on insertId makes harmless. Two writers let one
  parse while the other waits on its commit.
- A lease keeper extends the ack deadline of every message held (waiting or being stored), so
  Pub/Sub does not hand it to another replica meanwhile.
- A batch the store refuses is nacked (ack deadline 0) so Pub/Sub redelivers it at once, and its
  writer pauses: the store is unwell, and spinning through redeliveries would not help it.

Stop: the pullers stop first (a Pull on an empty subscription blocks until its deadline, so that
deadline is short), then everything already pulled is stored and acked, and only then does the
client close. Nothing taken is dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import google.auth
import google.auth.exceptions
from google.api_core import exceptions as google_errors
from google.cloud import pubsub_v1
from google.pubsub_v1.types import PullResponse

from bot.core.events import RawMessage

log = logging.getLogger(__name__)

StoreBatch = Callable[[Sequence[RawMessage]], object]
#: Pull returns, and Acknowledge / ModifyAckDeadline take, at most this many ids per call.
_MAX_IDS = 1000
#: A Pull on an empty subscription waits this long for messages: what `stop()` may wait on it.
_PULL_DEADLINE = 2.0
#: Pub/Sub's shortest ack deadline: a message's lease before our first extension, whatever the
#: subscription says. Leases are extended when less than `_LEASE_MARGIN` of them is left.
_FIRST_LEASE = 10.0
_LEASE_MARGIN = 5.0
#: How long a writer waits after the store refused a batch, and a puller after a failed Pull.
_PAUSE_AFTER_FAILURE = 1.0
#: A Pull that runs to its deadline is the normal answer of an idle subscription, and also what a
#: network that drops every packet looks like. When nothing has answered for this long, such a
#: deadline is checked by a cheap call that any reachable Pub/Sub answers (testIamPermissions).
_PROBE_AFTER = 30.0
#: Errors no retry will fix: the subscriber stops and says what to do.
_FATAL = (google_errors.NotFound, google_errors.PermissionDenied, google_errors.Unauthenticated)
#: Pulls failing without a break this long make the subscriber not ready (`/readyz`) and log a
#: warning, repeated every `_WARN_EVERY` while it lasts: a blip of a few seconds is neither.
FAILING_AFTER = 15.0
_WARN_EVERY = 300.0


class PullHealth:
    """Whether Pull calls have been answering: the first failure is logged, a run of failures longer
    than `failing_after` is a warning (and not ready), and the recovery is logged too. Thread-safe;
    `now` is monotonic seconds, passed in so tests need not wait."""

    def __init__(self, subscription: str, failing_after: float = FAILING_AFTER) -> None:
        self.subscription = subscription
        self.failing_after = failing_after
        self._lock = threading.Lock()
        self.answered = False  # some Pull got an answer (messages, or none before its deadline)
        self.failures = 0  # failed Pulls since the last answer
        self.total_failures = 0
        self.last_error = ""
        self._failing_since: float | None = None
        self._warned_at: float | None = None

    def ok(self, now: float) -> None:
        with self._lock:
            failures, since, warned = self.failures, self._failing_since, self._warned_at
            self.answered, self.failures, self._failing_since, self._warned_at = True, 0, None, None
        if failures and since is not None:
            (log.warning if warned is not None else log.info)(
                "ingest: Pub/Sub answers again after %d failed pull%s over %.0f s",
                failures,
                "" if failures == 1 else "s",
                now - since,
            )

    def failed(self, error: BaseException, now: float) -> None:
        with self._lock:
            self.failures += 1
            self.total_failures += 1
            self.last_error = short_error(error)
            if self._failing_since is None:
                self._failing_since = now
            first = self.failures == 1
            due = now - self._failing_since >= self.failing_after and (
                self._warned_at is None or now - self._warned_at >= _WARN_EVERY
            )
            if due:
                self._warned_at = now
            failures, since = self.failures, self._failing_since
        if first:
            log.info("ingest: Pull failed, retrying: %s", self.last_error)
        if due:
            log.warning(
                "ingest: every pull from %s has failed for %.0f s (%d attempts; last: %s): nothing is "
                "being ingested. Check that this host reaches Pub/Sub (pubsub.googleapis.com:443, or "
                "PUBSUB_EMULATOR_HOST when set) and that the subscription exists",
                self.subscription,
                now - since,
                failures,
                self.last_error,
            )

    def ready(self, now: float) -> tuple[bool, str]:
        """Ready once a Pull was answered, unless pulls have been failing for `failing_after` or more."""
        with self._lock:
            since, answered, error = self._failing_since, self.answered, self.last_error
        if since is not None and now - since >= self.failing_after:
            return False, f"Pub/Sub pulls failing for {now - since:.0f} s: {error}"
        if not answered:
            return False, f"waiting for Pub/Sub's first answer{f' ({error})' if error else ''}"
        return True, "pulling"


def short_error(error: BaseException) -> str:
    """One line for a gRPC failure: its status and the first line of its message."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]


class SubscriptionError(RuntimeError):
    """The subscription cannot be read; the message says what to fix."""


#: What to do when the Pub/Sub client would find no Google credentials.
NO_CREDENTIALS = (
    "no Google credentials were found for Pub/Sub: on a workstation run `gcloud auth "
    "application-default login`; on GKE use Workload Identity (the pod's Kubernetes ServiceAccount "
    "bound to a Google service account); elsewhere set GOOGLE_APPLICATION_CREDENTIALS to a key file"
)


def credentials_problem(emulator: bool) -> str | None:
    """A sentence when the client would fail for want of credentials, asked before anything starts
    (the client itself only finds out at its first call); None when it will find some, or when
    `emulator` (PUBSUB_EMULATOR_HOST) needs none."""
    if emulator:
        return None
    try:
        google.auth.default()
    except google.auth.exceptions.DefaultCredentialsError:
        return NO_CREDENTIALS
    return None


@dataclass(eq=False, slots=True)
class _Pulled:
    """What one Pull returned, held until it is stored and acked (or nacked)."""

    messages: list[RawMessage]
    ack_ids: list[str]
    leased_until: float = field(default_factory=lambda: time.monotonic() + _FIRST_LEASE)


class Subscriber:
    """Pulls the subscription into `store_batch` until stopped; acks a batch once it is stored."""

    def __init__(
        self,
        subscription: str,
        store_batch: StoreBatch,
        *,
        max_outstanding: int = 2000,  # the [pubsub] setting's default
        batch_size: int = 1000,
        max_batch_wait: float = 0.25,
        lease_seconds: int = 20,
        pullers: int = 4,
        writers: int = 2,
        probe_after: float = _PROBE_AFTER,
        pull_deadline: float = _PULL_DEADLINE,
    ) -> None:
        self.subscription = subscription
        self.store_batch = store_batch
        self.max_outstanding = max_outstanding
        self.batch_size = batch_size
        self.max_batch_wait = max_batch_wait
        self.lease_seconds = lease_seconds
        self._pull_size = max(1, min(_MAX_IDS, max_outstanding // pullers))
        self._pullers = [
            threading.Thread(target=self._pull_loop, name=f"netlog-ingest-pull-{n}", daemon=True)
            for n in range(pullers)
        ]
        self._writers = [
            threading.Thread(target=self._write_loop, name=f"netlog-ingest-write-{n}", daemon=True)
            for n in range(writers)
        ]
        self._keeper = threading.Thread(target=self._keep_leases, name="netlog-ingest-lease", daemon=True)
        self._pulled: queue.Queue[_Pulled] = queue.Queue()
        self._room = threading.Condition()  # guards `_held`, `_leases` and `acked`
        self._held = 0  # messages reserved by a Pull in flight, queued, or being stored
        self._leases: set[_Pulled] = set()
        self._stopping = threading.Event()  # pullers stop
        self._pulling_done = threading.Event()  # writers stop once the queue is empty
        self._closed = threading.Event()  # the lease keeper stops
        self._client: pubsub_v1.SubscriberClient | None = None
        self._failure: BaseException | None = None
        self.health = PullHealth(subscription)
        self.probe_after = probe_after
        self.pull_deadline = pull_deadline
        self._answered_at = float("-inf")  # monotonic time Pub/Sub last answered (never, yet)
        self._probing = threading.Lock()
        self.stopped = threading.Event()
        self.acked = 0

    def start(self) -> None:
        self._client = pubsub_v1.SubscriberClient()
        for thread in (*self._writers, self._keeper, *self._pullers):
            thread.start()
        log.info(
            "ingest: pulling from %s with %d pullers and %d writers "
            "(lease extension %d s, at most %d messages outstanding)",
            self.subscription,
            len(self._pullers),
            len(self._writers),
            self.lease_seconds,
            self.max_outstanding,
        )

    # --- pulling -------------------------------------------------------------------------------

    def _pull_loop(self) -> None:
        while True:
            wanted = self._reserve()
            if not wanted:
                return
            try:
                pulled = self._pull(wanted)
                self._answered(time.monotonic())
            except google_errors.DeadlineExceeded:
                pulled = None  # nothing arrived within the deadline: ask again
                self._check_deadline()
            except _FATAL as error:
                self._release(wanted)
                self._fail(error)
                return
            except Exception as error:  # transient (unavailable, internal): ask again shortly
                self.health.failed(error, time.monotonic())
                self._stopping.wait(_PAUSE_AFTER_FAILURE)
                pulled = None
            self._release(wanted - (len(pulled.ack_ids) if pulled else 0))
            if pulled:
                self._pulled.put(pulled)

    def _answered(self, now: float) -> None:
        self._answered_at = now
        self.health.ok(now)

    def _check_deadline(self) -> None:
        """A Pull ran to its deadline: an idle subscription if Pub/Sub answered lately or answers
        a probe now; otherwise nothing reaches Pub/Sub, and it counts as a failed pull."""
        if time.monotonic() - self._answered_at < self.probe_after:
            self.health.ok(time.monotonic())
            return
        if not self._probing.acquire(blocking=False):
            return  # another puller is asking: its answer will do
        try:
            error = self._probe()
        finally:
            self._probing.release()
        if error is None:
            self._answered(time.monotonic())
        else:
            self.health.failed(error, time.monotonic())

    def _probe(self) -> BaseException | None:
        """None if Pub/Sub answers testIamPermissions on the subscription at all (any status, even
        one refusing the call, proves the way there works); else what went wrong."""
        assert self._client is not None
        try:
            _may_consume(self._client, self.subscription, self.pull_deadline)  # whatever it says
        except (google_errors.DeadlineExceeded, google_errors.ServiceUnavailable) as error:
            return error
        except google_errors.GoogleAPICallError:
            return None  # answered, with a refusal
        return None

    def _reserve(self) -> int:
        """Waits for room under `max_outstanding`, reserves up to one Pull's worth; 0 once stopping."""
        with self._room:
            while not self._stopping.is_set():
                room = self.max_outstanding - self._held
                if room > 0:
                    wanted = min(room, self._pull_size)
                    self._held += wanted
                    return wanted
                self._room.wait(0.5)
        return 0

    def _release(self, count: int) -> None:
        with self._room:
            self._held -= count
            self._room.notify_all()

    def _pull(self, wanted: int) -> _Pulled | None:
        assert self._client is not None
        # retry=None: a deadline is the normal answer of an empty subscription, and other errors
        # are handled by the loop, which must keep watching for `stop()`.
        response = self._client.pull(
            subscription=self.subscription, max_messages=wanted, timeout=self.pull_deadline, retry=None
        )
        # The raw protobuf: proto-plus wrappers cost microseconds per field read, per message.
        received = PullResponse.pb(response).received_messages
        if not received:
            return None
        pulled = _Pulled(
            [RawMessage(r.message.data, r.message.message_id) for r in received],
            [r.ack_id for r in received],
        )
        with self._room:
            self._leases.add(pulled)
        return pulled

    def _fail(self, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error
        self._stopping.set()
        self.stopped.set()

    # --- storing and acking --------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch:
                self._write(batch)
            elif self._pulling_done.is_set() and self._pulled.empty():
                return

    def _next_batch(self) -> list[_Pulled]:
        try:
            batch = [self._pulled.get(timeout=0.1)]
        except queue.Empty:
            return []
        size = len(batch[0].ack_ids)
        deadline = time.monotonic() + self.max_batch_wait
        while size < self.batch_size:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                batch.append(self._pulled.get(timeout=timeout))
            except queue.Empty:
                break
            size += len(batch[-1].ack_ids)
        return batch

    def _write(self, batch: list[_Pulled]) -> None:
        messages = [message for pulled in batch for message in pulled.messages]
        ack_ids = [ack_id for pulled in batch for ack_id in pulled.ack_ids]
        try:
            self.store_batch(messages)
        except Exception:
            log.exception("ingest: could not store %d messages; they will be redelivered", len(messages))
            self._settle(batch)
            self._send(ack_ids, deadline=0)  # a nack: Pub/Sub redelivers at once
            self._release(len(ack_ids))
            self._stopping.wait(_PAUSE_AFTER_FAILURE)
            return
        self._settle(batch)
        self._send(ack_ids, deadline=None)
        with self._room:
            self.acked += len(ack_ids)
        self._release(len(ack_ids))

    def _settle(self, batch: list[_Pulled]) -> None:
        """The lease keeper no longer extends these."""
        with self._room:
            self._leases.difference_update(batch)

    def _send(self, ack_ids: list[str], deadline: int | None) -> None:
        """Acknowledges `ack_ids` (deadline None) or sets their ack deadline, in bounded calls."""
        assert self._client is not None
        for start in range(0, len(ack_ids), _MAX_IDS):
            chunk = ack_ids[start : start + _MAX_IDS]
            try:
                if deadline is None:
                    self._client.acknowledge(subscription=self.subscription, ack_ids=chunk)
                else:
                    self._client.modify_ack_deadline(
                        subscription=self.subscription, ack_ids=chunk, ack_deadline_seconds=deadline
                    )
            except (google_errors.GoogleAPICallError, google_errors.RetryError, ValueError) as error:
                # Stored but not acked: Pub/Sub redelivers, and the store's dedupe absorbs it. Never
                # raised further: a writer that died here would hold its messages' room forever.
                # (RetryError: retries ran out; ValueError: the channel closed under a late writer.)
                verb = "acknowledge" if deadline is None else "modify the ack deadline of"
                log.warning("ingest: could not %s %d messages: %s", verb, len(chunk), error)

    def _keep_leases(self) -> None:
        while not self._closed.wait(1.0):
            now = time.monotonic()
            with self._room:
                expiring = [p for p in self._leases if p.leased_until - now < _LEASE_MARGIN]
                for pulled in expiring:
                    pulled.leased_until = now + self.lease_seconds
            ack_ids = [ack_id for pulled in expiring for ack_id in pulled.ack_ids]
            if ack_ids:
                self._send(ack_ids, deadline=self.lease_seconds)

    # --- lifecycle -----------------------------------------------------------------------------

    def wait(self) -> None:
        """Blocks until `stop()` or a failure to pull; raises `SubscriptionError` for the latter."""
        self.stopped.wait()
        if self._failure is not None:
            raise SubscriptionError(
                describe_pubsub_error(self._failure, self.subscription)
            ) from self._failure

    def stop(self, timeout: float = 20.0) -> None:
        """Stop pulling, then store and ack everything already pulled."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        with self._room:
            self._room.notify_all()
        for thread in self._pullers:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._pulling_done.set()
        for thread in self._writers:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._closed.set()
        if self._keeper.is_alive():
            self._keeper.join()
        if self._client is not None:
            self._client.close()
        self.stopped.set()
        log.info("ingest: stopped after acking %d message%s", self.acked, "" if self.acked == 1 else "s")


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
    return f"Pub/Sub pull on {subscription} failed: {error}"


# --- `netlog-bot check` ----------------------------------------------------------------------

#: What pulling and acknowledging need on the subscription (in roles/pubsub.subscriber).
CONSUME = "pubsub.subscriptions.consume"


@dataclass(frozen=True, slots=True)
class SubscriptionProbe:
    #: The topic it is attached to; None when the bot may not describe the subscription, which is
    #: fine: roles/pubsub.subscriber grants pulling, not pubsub.subscriptions.get.
    topic: str | None
    #: Whether Pub/Sub confirmed that the bot's identity may pull from it (testIamPermissions);
    #: False when that cannot be asked, as on the Pub/Sub emulator, which has no IAM and answers
    #: UNIMPLEMENTED. A refusal is a `SubscriptionError`.
    verified: bool


def probe_subscription(subscription: str, timeout: float) -> SubscriptionProbe:
    """Whether `subscription` exists and the bot may pull from it, asking Pub/Sub and pulling
    nothing. Raises `SubscriptionError` with what to fix, also when the bot may not pull."""
    try:
        client = pubsub_v1.SubscriberClient()
    except google.auth.exceptions.DefaultCredentialsError:
        raise SubscriptionError(NO_CREDENTIALS) from None
    try:
        topic = _topic(client, subscription, timeout)
        may_consume = _may_consume(client, subscription, timeout)
        if may_consume is False:
            raise google_errors.PermissionDenied(f"{CONSUME} is not granted")  # type: ignore[no-untyped-call]
        return SubscriptionProbe(topic, may_consume is True)
    except google_errors.NotFound as error:
        raise SubscriptionError(describe_pubsub_error(error, subscription)) from None
    except google_errors.PermissionDenied as error:  # also: the Pub/Sub API is off in the project
        raise SubscriptionError(describe_pubsub_error(error, subscription)) from None
    except (google_errors.Unauthenticated, google.auth.exceptions.GoogleAuthError):
        expired = google_errors.Unauthenticated("credentials refused")  # type: ignore[no-untyped-call]
        raise SubscriptionError(describe_pubsub_error(expired, subscription)) from None
    except (google_errors.GoogleAPIError, OSError) as error:  # unavailable, deadline exceeded, …
        raise SubscriptionError(
            f"Pub/Sub did not answer about {subscription} ({type(error).__name__}): check the network "
            "(and PUBSUB_EMULATOR_HOST, if set), or try again in a minute"
        ) from None
    finally:
        client.close()


def _topic(client: pubsub_v1.SubscriberClient, subscription: str, timeout: float) -> str | None:
    try:
        found = client.get_subscription(subscription=subscription, timeout=timeout, retry=None)
    except google_errors.PermissionDenied:
        return None
    return str(found.topic)


def _may_consume(client: pubsub_v1.SubscriberClient, subscription: str, timeout: float) -> bool | None:
    request = {"resource": subscription, "permissions": [CONSUME]}
    try:
        answer = client.test_iam_permissions(request=request, timeout=timeout, retry=None)
    except google_errors.MethodNotImplemented:
        return None
    return CONSUME in answer.permissions
