"""Composition root: settings -> adapters -> engine and the Slack app -> start/stop.

Nothing happens at import time. Each command's body lives in `bot.commands`; this module only builds
what they run and starts and stops it in order.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

import handlers
import handlers.home
from bot.adapters import slack
from bot.adapters.http import HttpServer, wsgi_app
from bot.adapters.kube import Clusters
from bot.adapters.metrics import Metrics, State
from bot.adapters.pubsub import Subscriber, credentials_problem
from bot.adapters.store import Fence, Store
from bot.core.grouping import Grouper
from bot.core.rejects import RejectReport
from bot.engine import ALERTS_LEASE, Engine, replica_name
from bot.jobs import Jobs, last_fires, retention_jobs
from bot.pipeline import entry_parser, ingest_batch
from bot.services import BackgroundTasks, build_netlog, configured_clusters
from bot.services.digest import Digests, ScheduledDigests
from bot.services.home import Home
from bot.services.mutes import EXPIRY_EVERY, MuteExpiry
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)

#: Kubernetes sends SIGKILL 30 s after SIGTERM; everything below fits in ~25 s.
SHUTDOWN_BUDGET = 25.0
DRAIN_INGEST = 5.0  # for ingest to stop pulling, then store and acknowledge what it holds


def utcnow() -> datetime:
    return datetime.now(UTC)


def open_store(settings: Settings, url: str | None = None) -> Store:
    store = Store(url or settings.env.db_url)
    store.migrate()
    return store


def require_google_credentials(settings: Settings) -> None:
    """Stops the start with a sentence when Pub/Sub would find no Google credentials."""
    problem = credentials_problem(emulator=bool(settings.env.pubsub_emulator_host))
    if problem:
        raise SettingsError(problem)


#: Slack or the store failing this long (seconds, without a success between) makes /readyz fail.
NOT_READY_AFTER = 15.0


def subscriber(
    settings: Settings, subscription: str, store: Store, metrics: Metrics | None = None
) -> Subscriber:
    """Pulls `subscription` into `store`, holding at most `max_outstanding` messages and extending
    their leases by `lease_extension`, as the settings say."""
    pubsub, parser, report = settings.file.pubsub, entry_parser(settings.networks), RejectReport()
    return Subscriber(
        subscription,
        lambda batch: ingest_batch(store, batch, parser, utcnow(), report, metrics),
        max_outstanding=pubsub.max_outstanding,
        lease_seconds=int(pubsub.lease_extension.total_seconds()),
    )


def slack_client(
    settings: Settings, token: str, observe: slack.CallObserver | None = None
) -> tuple[WebClient, slack.SlackGateway]:
    """The Web API client, once auth.test accepted the token; a refusal stops the start with a sentence."""
    client = slack.make_client(token, settings.env.slack_api_url)
    gateway = slack.SlackGateway(client, observe)
    try:
        identity = gateway.auth_test()
    except slack.SlackFailure as failure:
        raise SettingsError(slack.bot_token_refusal(failure)) from None
    log.info("slack: connected to %s as %s", identity.team, identity.user)
    return client, gateway


def digest_job(jobs: Jobs, settings: Settings, store: Store, clusters: Clusters, fence: Fence) -> None:
    """The scheduled digest, when `digest.channels` names some: run by the replica holding the
    alerts lease (the engine starts and stops the jobs with it), fenced like its other writes."""
    digest = settings.file.digest
    if not digest.channels:
        return
    scheduled = ScheduledDigests(
        Digests(store, settings.routing, digest.channels, clusters),
        functools.partial(last_fires, digest.schedule, digest.timezone),
        utcnow,
        timezone=digest.timezone,
        project=settings.logging_project,
        fence=fence,
    )
    jobs.cron(digest.schedule, digest.timezone, "digest", scheduled.run)


def _client_wins_notice(record: logging.LogRecord) -> bool:
    return "`token` will be unused" not in record.getMessage()


class Runtime:
    """Everything `run` starts, in start order; `stop` undoes it in reverse, draining on the way."""

    def __init__(self, settings: Settings, credentials: slack.SlackCredentials) -> None:
        app_token = credentials.app_token
        subscription = settings.subscription_path()
        require_google_credentials(settings)  # before Slack is asked or the port opens
        self.store = store = open_store(settings)  # a NETLOG_DB_URL that cannot work, before Slack too
        self.metrics = metrics = Metrics()
        try:
            client, gateway = slack_client(settings, credentials.bot_token, metrics.slack_call)
        except SettingsError:
            store.close()
            raise
        self.gateway = gateway
        if warning := settings.file.access.warning():
            log.warning("run: %s", warning)
        # Bolt reads SLACK_BOT_TOKEN itself, then warns that our client (which carries that very
        # token, with the API URL and timeouts we chose) wins: true, and noise on every start.
        logging.getLogger("slack_bolt.App").addFilter(_client_wins_notice)
        self.bolt = App(
            client=client,
            signing_secret=credentials.signing_secret,
            token_verification_enabled=False,  # auth.test just ran
            request_verification_enabled=app_token is None,  # Socket Mode frames are not signed
        )
        self.background = BackgroundTasks()  # rollout reports, answered after the click's listener returned
        clusters = configured_clusters(settings)
        self.netlog = build_netlog(
            settings, store, gateway, clusters, utcnow, self.background, metrics=metrics
        )
        handlers.register(self.bolt, self.netlog)
        handlers.home.register(self.bolt, Home(store, clusters, utcnow, self.netlog.access.allowed))
        self.subscriber = subscriber(settings, subscription, store, metrics)
        jobs = retention_jobs(store, settings.file.retention, settings.file.history.retention, utcnow)
        holder = replica_name()
        digest_job(jobs, settings, store, clusters, Fence(ALERTS_LEASE, holder))
        jobs.every(EXPIRY_EVERY, "mute-expiry", MuteExpiry(store, utcnow).run)
        grouper = Grouper(settings.grouping_policy, settings.routing)
        self.engine = Engine(store, grouper, gateway, utcnow, jobs, holder)
        metrics.watch(self.state, utcnow)
        probes = "/healthz, /readyz, /metrics"
        paths = f"{probes}; Slack events arrive over Socket Mode" if app_token else f"/slack/events, {probes}"
        try:
            app = wsgi_app(None if app_token else self.bolt, self.live, self.ready, metrics.exposition)
            self.server = HttpServer(app, settings.env.http_port, paths)
        except OSError as error:
            raise SettingsError(
                f"cannot listen on NETLOG_HTTP_PORT={settings.env.http_port} ({error.strerror}): another "
                "process has it, or it needs privileges; set NETLOG_HTTP_PORT to a free port"
            ) from None
        self.socket_mode: Any = None
        if app_token:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            self.socket_mode = SocketModeHandler(self.bolt, app_token)

    def live(self) -> tuple[bool, dict[str, object]]:
        """Liveness: the threads that do the work run. Nothing outside the process is asked: a
        restart would not bring back an unreachable Pub/Sub, store or Slack (that is `ready`)."""
        loops = self.engine.alive
        ingesting = not self.subscriber.stopped.is_set()
        return loops and ingesting, {"ingest": ingesting, "loops": loops}

    def ready(self) -> tuple[bool, dict[str, object]]:
        """Readiness: this replica can do its job now. Each check says what it saw."""
        now = time.monotonic()
        checks: dict[str, object] = {}
        ready, checks["pubsub"] = self.subscriber.health.ready(now)
        try:
            checks["outbox_backlog"] = self.store.outbox.backlog()
            checks["store"] = "ok"
        except Exception as error:
            checks["store"] = f"not answering: {type(error).__name__}"
            ready = False
        since = self.gateway.unavailable_since
        if since is not None and now - since >= NOT_READY_AFTER:
            checks["slack"] = f"not answering for {now - since:.0f} s: {self.gateway.last_failure}"
            ready = False
        else:
            checks["slack"] = "ok"
        if self.socket_mode is not None:
            # A Socket Mode bot whose WebSocket stays down hears no slash command.
            connected = bool(self.socket_mode.client.is_connected())
            checks["socket_mode"] = "connected" if connected else "disconnected"
            ready = ready and connected
        checks["leading"] = self.engine.leading
        return ready, checks

    def state(self) -> State:
        """What /metrics reads at each scrape."""
        try:
            outbox: tuple[int, datetime | None] | None = self.store.outbox.backlog_since()
        except Exception:
            outbox = None
        return State(
            leading=self.engine.leading,
            open_groups=len(self.engine.worker.grouper.groups),
            outbox=outbox,
            pull_failures=self.subscriber.health.total_failures,
        )

    def start(self) -> None:
        self.server.start()
        if self.socket_mode is not None:
            try:
                self.socket_mode.connect()
            except (SlackClientError, OSError) as error:
                raise SettingsError(slack.app_token_refusal(error)) from None
        self.background.start()
        self.subscriber.start()
        self.engine.start()
        log.info("run: started (%s mode)", "Socket" if self.socket_mode else "HTTP")

    def stop(self) -> None:
        log.info("run: draining")
        deadline = time.monotonic() + SHUTDOWN_BUDGET
        self.subscriber.stop(timeout=DRAIN_INGEST)
        self.engine.stop(deadline)
        if self.socket_mode is not None:
            self.socket_mode.close()
        self.server.stop()
        self.background.stop(timeout=1.0)  # a rollout report still watching is abandoned
        self.store.close()
        log.info("run: stopped")
