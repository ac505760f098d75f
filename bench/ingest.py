"""Ingest from the Pub/Sub emulator, as ratios against what the emulator itself delivers in the same run.

`python -m bench.ingest [--messages N] [--profile]` starts the emulator on a free port (unless
PUBSUB_EMULATOR_HOST names one), publishes N storm messages to one topic with a subscription per
stage, and measures each stage draining its own subscription:

- baseline: unary Pull (1,000 per call) + bulk Acknowledge, storing nothing: the ceiling.
- streaming pull: the client library's per-message callback that only acks.
- the bot's `Subscriber` + `store_messages` into SQLite (a temporary file) and into PostgreSQL (a fresh
  schema, dropped after; NETLOG_TEST_PG_URL or the tests' default URL).

With `--profile`, a cProfile of the store path (parse + store, what the writers run) is printed.
Nothing here asserts a time: machines are noisy, compare ratios between commits.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import os
import pstats
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import quote

import sqlalchemy as sa
from google.cloud import pubsub_v1
from google.pubsub_v1.types import PubsubMessage, PullResponse

from bench.report import Row, header, render
from bench.storm import StormShape, storm
from bot.adapters.pubsub import Subscriber
from bot.adapters.store import Store
from bot.core.events import NetworkNames, RawMessage
from bot.pipeline import entry_parser, store_messages

PROJECT = "bench-project"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
STAGES = ("baseline", "streaming", "sqlite", "postgresql")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--messages", type=int, default=60_000, help="messages per stage")
    parser.add_argument("--profile", action="store_true", help="cProfile the writers' store path")
    args = parser.parse_args(argv)
    with emulator() as host:
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        rows = measure(args.messages, args.profile)
    profiled = " (profiled: cProfile slows the store stages, compare ratios only without it)"
    print(f"ingest: {args.messages:,} storm messages per stage, emulator at {host}{profiled * args.profile}")
    print(header())
    for row in rows:
        print(render(row))


def measure(count: int, profile: bool) -> list[Row]:
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    suffix = uuid.uuid4().hex[:8]
    topic = publisher.topic_path(PROJECT, f"storm-{suffix}")
    publisher.create_topic(name=topic)
    paths = {stage: subscriber.subscription_path(PROJECT, f"{stage}-{suffix}") for stage in STAGES}
    for path in paths.values():
        subscriber.create_subscription(name=path, topic=topic, ack_deadline_seconds=60)
    publish(publisher, topic, count)
    baseline = Row(
        "pull 1,000 + bulk ack (no store)", batched_pull(subscriber, paths["baseline"], count), "msg/s", ""
    )
    rows = [
        baseline,
        Row(
            "streaming pull, ack-only callback",
            streaming_pull(subscriber, paths["streaming"], count),
            "msg/s",
            "batched pull",
            baseline.figure,
        ),
    ]
    with tempfile.TemporaryDirectory() as directory:
        sqlite = f"sqlite:///{Path(directory) / 'netlog.db'}"
        rate = bot_ingest(sqlite, paths["sqlite"], count, profile)
        rows.append(Row("Subscriber + store, SQLite", rate, "msg/s", "batched pull", baseline.figure))
    with pg_schema() as postgresql:
        rate = bot_ingest(postgresql, paths["postgresql"], count, profile)
        rows.append(Row("Subscriber + store, PostgreSQL", rate, "msg/s", "batched pull", baseline.figure))
    for path in paths.values():
        subscriber.delete_subscription(subscription=path)
    publisher.delete_topic(topic=topic)
    subscriber.close()
    return rows


def publish(publisher: pubsub_v1.PublisherClient, topic: str, count: int) -> None:
    """Publishes in calls of 1,000 (the library's own batching would take minutes for a storm)."""
    bodies = storm(StormShape(entries=count))
    while chunk := list(itertools.islice(bodies, 1000)):
        publisher.api.publish(topic=topic, messages=[PubsubMessage(data=body) for body in chunk])


def batched_pull(subscriber: pubsub_v1.SubscriberClient, path: str, count: int) -> float:
    started, done = time.perf_counter(), 0
    while done < count:
        response = subscriber.pull(subscription=path, max_messages=1000, timeout=10)
        ack_ids = [r.ack_id for r in PullResponse.pb(response).received_messages]
        if ack_ids:
            subscriber.acknowledge(subscription=path, ack_ids=ack_ids)
        done += len(ack_ids)
    return done / (time.perf_counter() - started)


def streaming_pull(subscriber: pubsub_v1.SubscriberClient, path: str, count: int) -> float:
    done, lock, finished = itertools.count(1), threading.Lock(), threading.Event()

    def acknowledge(message: pubsub_v1.subscriber.message.Message) -> None:
        message.ack()
        with lock:
            if next(done) >= count:
                finished.set()

    flow = pubsub_v1.types.FlowControl(max_messages=5000)
    started = time.perf_counter()
    future = subscriber.subscribe(path, acknowledge, flow_control=flow)
    finished.wait()
    elapsed = time.perf_counter() - started
    future.cancel()
    future.result()
    return count / elapsed


def bot_ingest(url: str, path: str, count: int, profile: bool) -> float:
    """The bot's own path: `Subscriber` pulling into `store_messages`, until every message is acked."""
    store = Store(url)
    store.migrate()
    parser, profiler = entry_parser(NetworkNames()), cProfile.Profile() if profile else None

    def store_batch(batch: Sequence[RawMessage]) -> object:
        if profiler is None:
            return store_messages(store, batch, parser, datetime.now(UTC))
        with profiling(profiler):
            return store_messages(store, batch, parser, datetime.now(UTC))

    ingest = Subscriber(path, store_batch)
    started = time.perf_counter()
    ingest.start()
    while ingest.acked < count and not ingest.stopped.is_set():
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    ingest.stop()
    store.close()
    if profiler is not None:
        print(f"--- where the writers' time goes ({url.split(':', maxsplit=1)[0]}) ---")
        print(top_functions(profiler))
    return ingest.acked / elapsed


_profiling = threading.Lock()


@contextmanager
def profiling(profiler: cProfile.Profile) -> Iterator[None]:
    """cProfile is per thread and one at a time: writers take turns while profiled."""
    with _profiling:
        profiler.enable()
        try:
            yield
        finally:
            profiler.disable()


def top_functions(profiler: cProfile.Profile, limit: int = 25) -> str:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


@contextmanager
def pg_schema() -> Iterator[str]:
    base = os.environ.get("NETLOG_TEST_PG_URL", DEFAULT_PG_URL)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@contextmanager
def emulator() -> Iterator[str]:
    """PUBSUB_EMULATOR_HOST if set; else an emulator of our own in its own process group, stopped after."""
    if host := os.environ.get("PUBSUB_EMULATOR_HOST"):
        yield host
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{probe.getsockname()[1]}"
    with tempfile.TemporaryDirectory() as data, tempfile.TemporaryFile() as output:
        command = ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port={host}",
                   f"--project={PROJECT}", f"--data-dir={data}"]  # fmt: skip
        process = subprocess.Popen(command, stdout=output, stderr=output, start_new_session=True)
        try:
            wait_until_up(host, process, output)
            yield host
        finally:
            stop_group(process)


def wait_until_up(host: str, process: subprocess.Popen[bytes], output: IO[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output.seek(0)
            raise SystemExit(
                f"the Pub/Sub emulator exited at start: {output.read().decode(errors='replace')}"
            )
        try:
            urllib.request.urlopen(f"http://{host}/", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the Pub/Sub emulator did not answer on {host} within 60 s")


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """gcloud runs the emulator as a java child: stop the whole group, politely first."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    main()
