"""What `/netlog` does, one small service per concern: `access` (who may run what), `confirmations`
(pending cards and their codec), `netlogging` (NetworkLogging and namespace changes), `rollout`
(whether the nodes applied one, answered later from `background`), `mutes`, `status`, `audit`; and
`netlog.Netlog`, the dispatcher the Slack handlers call.

`build_netlog` wires them from what the composition root built; nothing here builds a Kubernetes
or Slack client itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from bot.adapters.cloudlogging import CloudLoggingSource
from bot.adapters.kube import ClusterAccess, Clusters
from bot.adapters.metrics import Metrics
from bot.adapters.slack import SlackGateway
from bot.adapters.store import Store
from bot.core.netpol import network_cidrs
from bot.services.access import Access
from bot.services.audit import Auditor
from bot.services.background import BackgroundTasks
from bot.services.confirmations import Confirmations
from bot.services.digest import DigestCommands, Digests
from bot.services.explain import Explainer, PolicyCommands, Proposals, apply_refusal
from bot.services.history import HistoryQueries
from bot.services.mutes import Mutes
from bot.services.netlog import Netlog
from bot.services.netlogging import LoggingChanges
from bot.services.rollout import EVENT_WAIT, RolloutReports
from bot.services.status import Status
from bot.settings import Settings

__all__ = [
    "BackgroundTasks",
    "HistoryQueries",
    "Netlog",
    "build_netlog",
    "configured_clusters",
    "history_queries",
]


def configured_clusters(settings: Settings) -> Clusters:
    """The clusters under `clusters:`, reached as the environment allows (in a pod, a kubeconfig)."""
    access = {
        name: ClusterAccess(section.context, section.endpoint, section.ca_certificate)
        for name, section in settings.file.clusters.items()
    }
    env = settings.env
    return Clusters(access, in_cluster=bool(env.kubernetes_service_host), kubeconfig=env.kubeconfig)


def history_queries(settings: Settings, store: Store, clock: Callable[[], datetime]) -> HistoryQueries:
    """`recent`/`top`: the store's history, and Cloud Logging when a project is known (the client
    connects on the first query that needs it)."""
    project = settings.logging_project
    logging = (
        CloudLoggingSource(project, settings.networks, settings.env.logging_api_url) if project else None
    )
    return HistoryQueries(store.history, logging, project, clock, store.grouping.history_started)


def build_netlog(
    settings: Settings,
    store: Store,
    slack: SlackGateway,
    clusters: Clusters,
    clock: Callable[[], datetime],
    background: BackgroundTasks,
    *,
    rollout_wait: int = EVENT_WAIT,
    metrics: Metrics | None = None,
) -> Netlog:
    auditor = Auditor(store, settings.file.slack.audit_channel)
    return Netlog(
        access=Access(settings.file.access, slack, clock),
        confirmations=Confirmations(store, clock),
        changes=LoggingChanges(clusters, auditor, clock),
        rollouts=RolloutReports(clusters, background, rollout_wait),
        mutes=Mutes(store, auditor, settings.file.mutes, clock),
        status=Status(store, clusters, settings.routing, settings.file.routes, clock),
        auditor=auditor,
        clock=clock,
        history=history_queries(settings, store, clock),
        digests=DigestCommands(
            Digests(store, settings.routing, settings.file.digest.channels, clusters),
            auditor,
            clock,
            timezone=settings.file.digest.timezone,
            project=settings.logging_project,
        ),
        policies=policy_commands(settings, clusters, clock),
        metrics=metrics,
    )


def flow_explainer(settings: Settings, clusters: Clusters) -> Explainer:
    """Explain and propose, naming bare IPs as the `networks` setting does (Slack and the terminal)."""
    return Explainer(clusters, network_cidrs(settings.file.networks))


def policy_commands(settings: Settings, clusters: Clusters, clock: Callable[[], datetime]) -> PolicyCommands:
    """explain / propose / proposals / withdraw, with the `networks` setting's names for bare IPs."""
    explainer = flow_explainer(settings, clusters)
    return PolicyCommands(
        explainer, Proposals(clusters, explainer, clock), functools.partial(apply_refusal, clusters)
    )
