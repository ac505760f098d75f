"""Composition root: settings -> adapters -> pipeline -> start/stop. Nothing happens at import time."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import yaml
from slack_bolt import App
from slack_sdk.errors import SlackApiError, SlackClientError

import handlers
from bot.adapters.http import HttpServer, wsgi_app
from bot.adapters.pubsub import IngestError, PubSubIngest, StoreBatch
from bot.adapters.slack import SlackFailure, SlackGateway, classify, make_client
from bot.adapters.store import Fence, LeaseLost, Store
from bot.core.events import NetworkNames, RawMessage, RejectedEntry, parse_message
from bot.core.grouping import Grouper
from bot.delivery import Delivery
from bot.demo.player import Timed, play, print_summary
from bot.demo.traffic import generate
from bot.pipeline import GroupingWorker, store_messages
from bot.services import BackgroundTasks, build_netlog, configured_clusters
from bot.settings import EnvSettings, Settings, SettingsError, parse_file_config

log = logging.getLogger(__name__)

PURGE_EVERY = timedelta(hours=1)
GROUPING_TICK = 1.0
DELIVERY_TICK = 0.2
#: Kubernetes sends SIGKILL 30 s after SIGTERM; everything below fits in ~25 s.
SHUTDOWN_BUDGET = 25.0
DRAIN_INGEST = 5.0  # each of: closing the stream, storing and acking the last batch
#: One replica at a time groups and delivers (ingest runs everywhere); a dead holder's lease lapses.
ALERTS_LEASE = "alerts"
LEASE_TTL = timedelta(seconds=15)


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
                "netlog-bot demo: half an hour of policy-action traffic from three GKE clusters, "
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
    ingest = _ingest(settings, subscription, lambda batch: store_messages(store, batch, networks, utcnow()))
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


def _ingest(settings: Settings, subscription: str, store_batch: StoreBatch) -> PubSubIngest:
    pubsub = settings.file.pubsub
    return PubSubIngest(
        subscription,
        store_batch,
        max_outstanding=pubsub.max_outstanding,
        lease_seconds=int(pubsub.lease_extension.total_seconds()),
    )


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
    store = Store(settings.env.db_url)
    version = store.migrate()
    try:
        print(
            f"settings: OK (config file: {settings.env.config_path or 'none, built-in defaults'})",
            file=out,
        )
        print(
            f"store: {store.db.engine.url.render_as_string(hide_password=True)} at schema version {version}",
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


class Loop:
    """Calls `work` every `interval` seconds in a thread until stopped; an error is logged, not fatal."""

    def __init__(self, name: str, work: Callable[[], object], interval: float) -> None:
        self.name = name
        self.work = work
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"netlog-{name}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.work()
            except Exception:
                log.exception("%s: failed; retrying in %.0f s", self.name, max(self.interval, 1.0))
                self._stop.wait(max(self.interval, 1.0))
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stops the loop; False if its current round (a slow Slack or database call) is still going."""
        self._stop.set()
        self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def slack_credentials(settings: Settings) -> tuple[str, str | None, str | None]:
    """(bot token, signing secret, app token); HTTP mode needs the signing secret, Socket Mode not."""
    env = settings.env
    if env.slack_bot_token is None:
        raise SettingsError("SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...) of the app")
    app_token = env.slack_app_token.get_secret_value() if env.slack_app_token else None
    secret = env.slack_signing_secret.get_secret_value() if env.slack_signing_secret else None
    if app_token is None and secret is None:
        raise SettingsError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode verifies every Slack request with it "
            "(or set SLACK_APP_TOKEN to use Socket Mode)"
        )
    return env.slack_bot_token.get_secret_value(), secret, app_token


def connect_socket_mode(handler: Any) -> None:
    """Opens the WebSocket. If Slack refuses SLACK_APP_TOKEN at apps.connections.open, the start stops
    with a sentence that says what to fix, as it does when auth.test refuses SLACK_BOT_TOKEN."""
    try:
        handler.connect()
        return
    except SlackApiError as error:
        failure = classify(error)
    except (SlackClientError, OSError) as error:
        failure = SlackFailure("unavailable", type(error).__name__)
    advice = (
        failure.what_to_do
        if failure.kind in ("unavailable", "rate_limited")
        else "set it to an app-level token (xapp-...) with the connections:write scope, from the app's "
        "Basic Information page"
    )
    raise SettingsError(f"Slack refused SLACK_APP_TOKEN at apps.connections.open ({failure.error}): {advice}")


def _client_wins_notice(record: logging.LogRecord) -> bool:
    return "`token` will be unused" not in record.getMessage()


class Runtime:
    """Everything `run` starts, in start order; `stop` undoes it in reverse, draining on the way."""

    def __init__(self, settings: Settings) -> None:
        token, secret, app_token = slack_credentials(settings)
        subscription = settings.subscription_path()
        client = make_client(token, settings.env.slack_api_url)
        gateway = SlackGateway(client)
        try:
            identity = gateway.auth_test()
        except SlackFailure as failure:
            raise SettingsError(
                f"Slack refused SLACK_BOT_TOKEN at auth.test ({failure.error}): {failure.what_to_do}"
            ) from None
        log.info("slack: connected to %s as %s", identity.team, identity.user)
        self.store = store = open_store(settings)
        # Bolt reads SLACK_BOT_TOKEN itself, then warns that our client (which carries that very
        # token, with the API URL and timeouts we chose) wins: true, and noise on every start.
        logging.getLogger("slack_bolt.App").addFilter(_client_wins_notice)
        self.bolt = App(
            client=client,
            signing_secret=secret,
            token_verification_enabled=False,  # auth.test just ran
            request_verification_enabled=app_token is None,  # Socket Mode frames are not signed
        )
        self.background = BackgroundTasks()  # rollout reports, answered after the click's listener returned
        netlog = build_netlog(
            settings, store, gateway, configured_clusters(settings), utcnow, self.background
        )
        handlers.register(self.bolt, netlog)
        networks = settings.networks
        self.ingest = _ingest(
            settings, subscription, lambda batch: store_messages(store, batch, networks, utcnow())
        )
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        fence = Fence(ALERTS_LEASE, self.holder)
        grouper = Grouper(settings.grouping_policy, settings.routing)
        self.worker = GroupingWorker(store, grouper, fence=fence)
        self.delivery = Delivery(store, gateway, utcnow, fence=fence)
        self.leading = False
        self.loops = [
            Loop("grouping", self.group, GROUPING_TICK),
            Loop("delivery", self.deliver, DELIVERY_TICK),
            Loop("retention", lambda: purge(store, settings), PURGE_EVERY.total_seconds()),
        ]
        self.server = HttpServer(
            wsgi_app(None if app_token else self.bolt, self.health),
            settings.env.http_port,
            "/healthz; Slack events arrive over Socket Mode" if app_token else "/slack/events, /healthz",
        )
        self.socket_mode: Any = None
        if app_token:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            self.socket_mode = SocketModeHandler(self.bolt, app_token)

    def group(self) -> None:
        """Fold and tick while holding the alerts lease; on taking it over, start from the store."""
        now = utcnow()
        held = self.store.leases.hold(ALERTS_LEASE, self.holder, now, LEASE_TTL)
        if held is None:
            if self.leading:
                log.warning("run: another replica took over grouping and delivery")
            self.leading = False
            return
        if held == "taken" or not self.leading:
            # Taken, not renewed: the lease lapsed (this replica stalled) and someone else may have
            # grouped meanwhile, so what memory holds is stale even if this replica led before.
            self.worker.reload()
            if self.leading:
                log.warning("run: the alerts lease lapsed and was taken again; reloaded the groups")
            else:
                log.info("run: this replica groups and delivers alerts (%s)", self.holder)
            self.leading = True
        try:
            self.worker.step(now)
        except LeaseLost:
            self._lost_lease()

    def deliver(self) -> None:
        if not self.leading:
            return
        try:
            self.delivery.deliver_due()
        except LeaseLost:
            self._lost_lease()

    def _lost_lease(self) -> None:
        # This replica stalled past its lease and another took over: its uncommitted grouping is
        # discarded (the worker reloads from the store if it leads again) and it stops sending.
        if self.leading:
            log.warning(
                "run: the alerts lease lapsed mid-step (this replica stalled, or another took over); "
                "it reloads the groups before it leads again"
            )
        self.leading = False

    def health(self) -> tuple[bool, dict[str, object]]:
        loops = all(loop.alive for loop in self.loops)
        ingesting = not self.ingest.stopped.is_set()
        details: dict[str, object] = {"ingest": ingesting, "loops": loops, "leading": self.leading}
        connected = True
        if self.socket_mode is not None:
            # A Socket Mode bot whose WebSocket stays down hears no slash command: not healthy.
            connected = bool(self.socket_mode.client.is_connected())
            details["socket_mode"] = connected
        try:
            details["outbox_backlog"] = self.store.outbox.backlog()
        except Exception:
            details["store"] = "unreachable"
            return False, details
        return loops and ingesting and connected, details

    def start(self) -> None:
        self.server.start()
        if self.socket_mode is not None:
            connect_socket_mode(self.socket_mode)
        self.background.start()
        self.ingest.start()
        for loop in self.loops:
            loop.start()
        log.info("run: started (%s mode)", "Socket" if self.socket_mode else "HTTP")

    def stop(self) -> None:
        log.info("run: draining")
        deadline = time.monotonic() + SHUTDOWN_BUDGET
        self.ingest.stop(timeout=DRAIN_INGEST)
        stopped = [loop.stop(deadline - time.monotonic() - 5) for loop in self.loops]
        # Draining beside a loop still inside its round could post or fold the same thing twice.
        if self.leading and all(stopped):
            drain(self.worker, self.delivery, self.store, deadline - 2)
            self.store.leases.release(ALERTS_LEASE, self.holder)
        if self.socket_mode is not None:
            self.socket_mode.close()
        self.server.stop()
        self.background.stop(timeout=1.0)  # a rollout report still watching is abandoned
        self.store.close()
        log.info("run: stopped")


def run_bot(settings: Settings) -> int:
    """`netlog-bot run`: ingest, grouping, Slack delivery and the Bolt app in one process."""
    runtime = Runtime(settings)
    shutdown = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: shutdown.set())
    runtime.start()
    try:
        while not shutdown.is_set() and not runtime.ingest.stopped.is_set():
            shutdown.wait(0.5)
        if runtime.ingest.stopped.is_set():
            runtime.ingest.wait()
    except IngestError as error:
        log.error("ingest stopped: %s", error)
        return 1
    finally:
        runtime.stop()
    return 0


def drain(worker: GroupingWorker, delivery: Delivery, store: Store, until: float) -> None:
    """Fold what ingest stored last and try to deliver the backlog; what is left stays queued.
    A fenced delivery's lease is renewed as the drain goes on (it can outlast the lease's TTL)."""
    fence = delivery.fence

    def renew() -> None:
        # Only an unbroken hold will do: after a lapse, what the worker holds in memory is stale.
        if (
            fence is not None
            and store.leases.hold(fence.name, fence.holder, utcnow(), LEASE_TTL) != "renewed"
        ):
            raise LeaseLost(fence)

    try:
        renew()
        worker.catch_up(utcnow())
        while store.outbox.backlog() and time.monotonic() < until:
            renew()
            if not delivery.deliver_due():
                threading.Event().wait(DELIVERY_TICK)
        left = store.outbox.backlog()
        if left:
            log.warning("run: %d Slack messages stay queued in the outbox for the next start", left)
    except LeaseLost:
        log.warning("run: the alerts lease lapsed while draining; what is queued stays for the next leader")
    except Exception:
        log.exception("run: draining failed; the outbox keeps what was not delivered")
