"""`netlog-bot check`: the checklist a new deployment runs first. One line per item, `name: OK
(detail)`, `name: FAILED — what to do`, `name: skipped — why` (or `warning — …`), and exit 1 when
any item failed.

It asks and changes nothing: the store is looked at, not created or upgraded, unless `--migrate`;
Slack is asked auth.test (the token, and its scopes from the answer's headers) and
conversations.info per configured channel, and, for SLACK_APP_TOKEN, apps.connections.open (a Socket
Mode URL it hands out and nobody uses); Pub/Sub whether the subscription exists and the bot
may pull from it (testIamPermissions), pulling nothing; Cloud Logging for one entry; each cluster's
API server for `networkloggings/default` and, by SelfSubjectAccessReview, whether the bot may do
each thing it does there. What is not configured is skipped, so a fresh clone with no secrets
still prints the whole list; a missing SLACK_BOT_TOKEN is a skip too, since `ingest` runs without it.

The network items run at once, each in a thread of its own, and whatever has not answered within
`timeout` seconds of the start is reported as a failure: the checklist takes seconds even when
everything it asks is down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, TextIO

from bot.adapters import slack
from bot.adapters.cloudlogging import CloudLoggingSource, LoggingError
from bot.adapters.kube import ACCESS_NEEDED, APPLY_ACCESS, Access, Clusters, KubeError, may
from bot.adapters.pubsub import SubscriptionError, credentials_problem, probe_subscription
from bot.adapters.store import inspect_store
from bot.core.netlogging import LoggingSpec
from bot.services import configured_clusters
from bot.settings import Settings

#: How long the checklist waits for the network items (asked at once), by default.
TIMEOUT = 8.0
#: How long one call waits for its answer, where the client takes a timeout: less than TIMEOUT,
#: so a slow service reads as its client's own error rather than as no answer at all.
CALL_TIMEOUT = 5.0
#: Cloud Logging is asked for one policy-action entry this recent.
LOGGING_WINDOW = timedelta(hours=24)
RBAC = "the netlog-bot ClusterRole (see the README, RBAC for the bot)"

Status = Literal["OK", "FAILED", "skipped", "warning"]


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    status: Status
    detail: str = ""

    def __str__(self) -> str:
        if self.status == "OK":
            return f"{self.name}: OK ({self.detail})" if self.detail else f"{self.name}: OK"
        return f"{self.name}: {self.status} — {self.detail}"


Probe = Callable[[], list[Line]]


def check(settings: Settings, out: TextIO, *, migrate: bool = False, timeout: float = TIMEOUT) -> int:
    # Before anything is printed: a bad subscription name is refused with a sentence (exit 2),
    # as a start refuses it, and so is a schema from a newer release (in inspect_store).
    subscription = settings.subscription_path() if settings.env.subscription else None
    fine, store = inspect_store(settings.env.db_url, migrate=migrate)
    lines = [_settings_line(settings)]
    if warning := settings.file.access.warning():
        lines.append(Line("access", "warning", warning))
    lines.append(Line("store", "OK" if fine else "FAILED", store))
    for line in lines:
        print(line, file=out, flush=True)
    probes: list[tuple[str, Probe]] = [
        ("slack", lambda: slack_lines(settings)),
        ("slack app token", lambda: [app_token_line(settings)]),
        ("pubsub subscription", lambda: [pubsub_line(settings, subscription)]),
        ("cloud logging", lambda: [logging_line(settings, datetime.now(UTC))]),
    ]
    if settings.file.clusters:
        clusters = configured_clusters(settings)
        probes += [(f"cluster {name}", _cluster_probe(clusters, name)) for name in clusters.names()]
    else:
        probes.append(
            ("clusters", lambda: [Line("clusters", "skipped", "none under `clusters:` in the config")])
        )
    for found in _run_all(probes, timeout):
        for line in found:
            print(line, file=out, flush=True)
            lines.append(line)
    return 1 if any(line.status == "FAILED" for line in lines) else 0


def _settings_line(settings: Settings) -> Line:
    routes = len(settings.file.routes)
    return Line(
        "settings",
        "OK",
        f"config file: {settings.env.config_path or 'none, built-in defaults'}; "
        f"{routes} route{'' if routes == 1 else 's'}, default channel {settings.file.slack.default_channel}",
    )


def _run_all(probes: list[tuple[str, Probe]], timeout: float) -> Iterator[list[Line]]:
    """Starts every probe at once, each in a daemon thread (a call stuck past `timeout` is left to
    the process's exit), and yields their lines in the order given, each as soon as it is known."""
    answers: dict[str, list[Line]] = {}

    def run(name: str, probe: Probe) -> None:
        try:
            answers[name] = probe()
        except Exception as error:  # a surprise still gets its line, not a traceback
            answers[name] = [Line(name, "FAILED", f"unexpected {type(error).__name__}: {error}")]

    threads = [
        threading.Thread(target=run, args=(name, probe), name=f"netlog-check-{name}", daemon=True)
        for name, probe in probes
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for (name, _), thread in zip(probes, threads, strict=True):
        thread.join(max(0.0, deadline - time.monotonic()))
        silent = Line(
            name,
            "FAILED",
            f"no answer within {timeout:g} s: check the network (and HTTPS_PROXY, if this host needs "
            "one), then run `netlog-bot check` again",
        )
        yield answers.get(name, [silent])


# --- Slack ------------------------------------------------------------------------------------


def configured_channels(settings: Settings) -> dict[str, list[str]]:
    """Every channel the settings send something to, in the order a person reads the config, with
    what each is for."""
    file = settings.file
    uses: dict[str, list[str]] = {}

    def add(channel: str, use: str) -> None:
        if use not in uses.setdefault(channel, []):
            uses[channel].append(use)

    add(file.slack.default_channel, "default")
    if file.slack.audit_channel:
        add(file.slack.audit_channel, "audit")
    for route in file.routes:
        add(route.channel, "route")
    for channel in file.digest.channels:
        add(channel, "digest")
    return uses


def slack_lines(settings: Settings) -> list[Line]:
    token = settings.env.slack_bot_token
    if token is None:
        return [Line("slack", "skipped", "SLACK_BOT_TOKEN is not set (`run` needs it; `ingest` does not)")]
    client = slack.make_client(token.get_secret_value(), settings.env.slack_api_url)
    client.timeout = int(CALL_TIMEOUT)
    gateway = slack.SlackGateway(client)
    try:
        grant = slack.token_grant(gateway)
    except slack.SlackFailure as failure:
        return [Line("slack token", "FAILED", slack.bot_token_refusal(failure))]
    identity = grant.identity
    lines = [
        Line("slack token", "OK", f"workspace {identity.team}, bot @{identity.user}"),
        _scopes_line(grant),
    ]
    for channel, uses in configured_channels(settings).items():
        lines.append(_channel_line(gateway, grant, channel, uses))
    return lines


def app_token_line(settings: Settings) -> Line:
    token = settings.env.slack_app_token
    if token is None:
        return Line(
            "slack app token",
            "skipped",
            "SLACK_APP_TOKEN is not set (HTTP mode: Slack posts to /slack/events; Socket Mode needs it)",
        )
    problem = slack.app_token_problem(token.get_secret_value(), settings.env.slack_api_url, int(CALL_TIMEOUT))
    if problem is not None:
        return Line("slack app token", "FAILED", problem)
    return Line("slack app token", "OK", "Slack opens Socket Mode connections for it (apps.connections.open)")


def _scopes_line(grant: slack.TokenGrant) -> Line:
    if grant.scopes is None:
        return Line(
            "slack scopes",
            "skipped",
            "Slack's answer did not say which scopes the token has (x-oauth-scopes)",
        )
    missing = grant.missing()
    if missing:
        return Line(
            "slack scopes",
            "FAILED",
            f"the token lacks {', '.join(missing)}: add {'it' if len(missing) == 1 else 'them'} under "
            "OAuth & Permissions → Bot Token Scopes (config/slack-app-manifest.yaml lists them all), "
            "then reinstall the app to the workspace",
        )
    return Line(
        "slack scopes", "OK", f"all {len(slack.BOT_SCOPES)} the bot uses: {', '.join(slack.BOT_SCOPES)}"
    )


def _channel_line(
    gateway: slack.SlackGateway, grant: slack.TokenGrant, channel: str, uses: list[str]
) -> Line:
    name = f"slack channel {channel} ({', '.join(uses)})"
    invite = f"/invite @{grant.identity.user or 'netlog-bot'}"
    try:
        state = slack.channel_state(gateway, channel)
    except slack.SlackFailure as failure:
        if failure.error == "channel_not_found":
            return Line(
                name,
                "FAILED",
                f"Slack shows the bot no channel {channel}: check it in the config, or, if it is a "
                f"private channel, type {invite} in it",
            )
        if failure.kind in ("unavailable", "rate_limited"):
            return Line(name, "FAILED", f"Slack did not answer ({failure.error}): {slack.UNREACHABLE}")
        return Line(
            name, "FAILED", f"Slack refused conversations.info ({failure.error}): {failure.what_to_do}"
        )
    shown = state.id if channel.startswith("#") else f"#{state.name}"
    if state.is_archived:
        return Line(name, "FAILED", f"{shown} is archived: unarchive it or send these messages elsewhere")
    if state.is_member:
        return Line(name, "OK", f"{shown}; the bot is a member")
    if not state.is_private and "channels:join" in (grant.scopes or ()):
        return Line(
            name, "OK", f"{shown}; not a member yet, the bot joins this public channel at its first message"
        )
    return Line(name, "FAILED", f"the bot is not a member of #{state.name}: type {invite} in #{state.name}")


# --- Google -------------------------------------------------------------------------------------


def pubsub_line(settings: Settings, subscription: str | None) -> Line:
    name = "pubsub subscription"
    if subscription is None:
        return Line(name, "skipped", "NETLOG_SUBSCRIPTION is not set (`run` and `ingest` need it)")
    emulator = settings.env.pubsub_emulator_host
    if problem := credentials_problem(emulator=bool(emulator)):
        return Line(name, "FAILED", problem)
    try:
        probe = probe_subscription(subscription, CALL_TIMEOUT)
    except SubscriptionError as error:
        return Line(name, "FAILED", str(error))
    where = subscription + (f" on the emulator at {emulator}" if emulator else "")
    topic = f", fed by {probe.topic}" if probe.topic else ""
    if not probe.verified:
        return Line(
            name,
            "OK",
            f"{where}{topic}; could not verify the bot may pull (the emulator has no IAM: "
            "testIamPermissions is UNIMPLEMENTED)",
        )
    return Line(name, "OK", f"{where}{topic}; the bot may pull from it")


def logging_line(settings: Settings, now: datetime) -> Line:
    name = "cloud logging"
    project = settings.logging_project
    if project is None:
        return Line(
            name,
            "skipped",
            "no Google Cloud project is known (GOOGLE_CLOUD_PROJECT, or a full NETLOG_SUBSCRIPTION "
            "path): `recent` and `top` answer from the store only",
        )
    source = CloudLoggingSource(project, settings.networks, settings.env.logging_api_url, cache_for=0)
    try:
        found = source.probe(now - LOGGING_WINDOW)
    except LoggingError as error:
        return Line(name, "FAILED", str(error))
    seen = (
        "policy-action entries were logged in the last 24 h"
        if found
        else "no policy-action entries in the last 24 h (is network policy logging on, in some cluster?)"
    )
    return Line(name, "OK", f"project {project} is readable; {seen}")


# --- Kubernetes ---------------------------------------------------------------------------------


def _cluster_probe(clusters: Clusters, cluster: str) -> Probe:
    return lambda: [cluster_line(clusters, cluster)]


def cluster_line(clusters: Clusters, cluster: str) -> Line:
    name = f"cluster {cluster}"
    try:
        client = clusters.client(cluster)
        refused = [access for access in ACCESS_NEEDED if not may(client, access)]
        if any(access.verb == "get" and access.name for access in refused):
            now = "its NetworkLogging settings cannot be read"
        else:
            now = "NetworkLogging: " + logging_settings(LoggingSpec.from_object(client.get_logging()))
    except KubeError as error:
        return Line(name, "FAILED", str(error))
    if refused:
        return Line(
            name,
            "FAILED",
            f"the bot may not {_access_list(refused)} in cluster {cluster}: bind {RBAC} to the "
            f"identity it runs as ({now})",
        )
    try:
        applies = all(may(client, access) for access in APPLY_ACCESS)
    except KubeError:
        applies = False
    proposals = (
        "it may apply proposals"
        if applies
        else "applying proposals is not granted (opt-in: deploy/kubernetes/rbac-apply.yaml)"
    )
    return Line(name, "OK", f"{now}; the bot may {_access_list(ACCESS_NEEDED)}; {proposals}")


def logging_settings(spec: LoggingSpec) -> str:
    """`deny logging on, allow logging off`, with delegation and the invalid combination said."""
    words = []
    for kind in ("deny", "allow"):
        log, delegate = spec.get(kind)
        state = "on" if log else "off"
        if delegate:
            state += (
                " for annotated namespaces only" if log else " (delegate without log: the nodes ignore it)"
            )
        words.append(f"{kind} logging {state}")
    hint = "" if spec.deny_log else " (nothing denied reaches the bot: /netlog enable deny)"
    return ", ".join(words) + hint


def _access_list(accesses: tuple[Access, ...] | list[Access]) -> str:
    """The accesses by target: get, patch networkloggings `default`; get, list, patch namespaces; …"""
    verbs: dict[str, list[str]] = {}
    for access in accesses:
        verbs.setdefault(access.target, []).append(access.verb)
    return "; ".join(f"{', '.join(v)} {target}" for target, v in verbs.items())
