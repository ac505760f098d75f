"""Composition root: settings -> adapters -> pipeline -> start/stop. Nothing happens at import time."""

from __future__ import annotations

import json
import logging
import signal
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TextIO

import yaml

from bot.adapters.pubsub import IngestError, PubSubIngest
from bot.adapters.store import Store
from bot.core.events import NetworkNames, RawMessage, RejectedEntry, parse_message
from bot.demo.player import Timed, play, print_summary
from bot.demo.traffic import generate
from bot.pipeline import store_messages
from bot.settings import EnvSettings, Settings, SettingsError, parse_file_config

log = logging.getLogger(__name__)

PURGE_EVERY = timedelta(hours=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def demo_settings(db_url: str) -> Settings:
    """The embedded demo configuration, whatever the environment says."""
    text = resources.files("bot.demo").joinpath("demo.yaml").read_text(encoding="utf-8")
    return Settings(EnvSettings(NETLOG_DB_URL=db_url), parse_file_config(yaml.safe_load(text), "demo.yaml"))


def run_demo(out: TextIO, seed: int = 7) -> int:
    with tempfile.TemporaryDirectory(prefix="netlog-demo-") as folder:
        settings = demo_settings(f"sqlite:///{Path(folder) / 'demo.db'}")
        store = open_store(settings)
        try:
            print(
                "netlog-bot demo: 45 minutes of policy-action traffic from three GKE clusters, "
                "on a virtual clock.",
                file=out,
            )
            print("Each block is what a Slack channel would receive.\n", file=out)
            timeline = [Timed(a.at, RawMessage(a.data, a.message_id)) for a in generate(seed)]
            summary = play(timeline, settings, store, out)
            print_summary(summary, store, out)
        finally:
            store.close()
    return 0


def run_replay(source: TextIO, settings: Settings, out: TextIO, db_url: str | None = None) -> int:
    """Replays LogEntries (JSON lines, push envelopes, or `gcloud logging read --format=json`)."""
    with tempfile.TemporaryDirectory(prefix="netlog-replay-") as folder:
        url = db_url or f"sqlite:///{Path(folder) / 'replay.db'}"
        store = open_store(settings, url)
        try:
            timeline = replay_timeline(read_messages(source), settings.networks)
            summary = play(timeline, settings, store, out)
            print_summary(summary, store, out)
        finally:
            store.close()
    return 0


def read_messages(source: TextIO) -> Iterator[RawMessage]:
    text = source.read()
    if text.lstrip().startswith("["):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise SettingsError(f"the input looks like a JSON array but is not valid JSON: {error}") from None
        for number, entry in enumerate(document, start=1):
            yield RawMessage(json.dumps(entry).encode(), f"item {number}")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            # surrogateescape: stdin in a C/POSIX locale keeps undecodable bytes; they become rejects
            yield RawMessage(line.encode("utf-8", "surrogateescape"), f"line {number}")


def replay_timeline(messages: Iterator[RawMessage], networks: NetworkNames) -> list[Timed]:
    """Each entry arrives at its own timestamp; unreadable ones arrive with the entry before them."""
    timeline: list[Timed] = []
    unplaced: list[RawMessage] = []
    for message in messages:
        try:
            at = parse_message(message.data, networks).timestamp
        except RejectedEntry:
            unplaced.append(message)
            continue
        timeline.append(Timed(at, message))
    timeline.sort(key=lambda item: item.at)
    start = timeline[0].at if timeline else utcnow()
    return [Timed(start, message) for message in unplaced] + timeline


def open_store(settings: Settings, url: str | None = None) -> Store:
    store = Store(url or settings.env.db_url)
    store.migrate()
    return store


def run_ingest(settings: Settings) -> int:
    """`netlog-bot ingest`: the subscriber into the store, until SIGTERM or SIGINT."""
    subscription = settings.subscription_path()
    store = open_store(settings)
    networks = settings.networks
    ingest = PubSubIngest(subscription, lambda batch: store_messages(store, batch, networks, utcnow()))
    shutdown = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: shutdown.set())
    ingest.start()
    next_purge = utcnow()
    try:
        while not shutdown.is_set() and not ingest.stopped.is_set():
            if utcnow() >= next_purge:
                purge(store, settings)
                next_purge = utcnow() + PURGE_EVERY
            shutdown.wait(0.5)
        if ingest.stopped.is_set():
            ingest.wait()  # raises IngestError with what to fix
    except IngestError as error:
        log.error("ingest stopped: %s", error)
        return 1
    finally:
        log.info("ingest: shutting down")
        ingest.stop()
        store.close()
    return 0


def purge(store: Store, settings: Settings) -> None:
    try:
        removed = store.purge(utcnow(), settings.file.retention)
    except Exception:  # retention is housekeeping: never let it stop ingest
        log.exception("retention purge failed; will try again later")
        return
    if any(removed.values()):
        log.info("retention: removed %s", ", ".join(f"{n} {what}" for what, n in removed.items()))


def check(settings: Settings, out: TextIO) -> int:
    """`netlog-bot check`: validate settings and the store, and say what is configured."""
    # Before "settings: OK" is printed, and before a database file is created.
    subscription = settings.subscription_path() if settings.env.subscription else None
    store = open_store(settings)
    try:
        print(
            f"settings: OK (config file: {settings.env.config_path or 'none, built-in defaults'})",
            file=out,
        )
        print(
            f"store: {store.engine.url.render_as_string(hide_password=True)} "
            f"at schema version {store.migrate()}",
            file=out,
        )
        print(
            f"routes: {len(settings.file.routes)}, default channel {settings.file.slack.default_channel}",
            file=out,
        )
        if subscription:
            print(f"subscription: {subscription}", file=out)
    finally:
        store.close()
    return 0
