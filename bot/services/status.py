"""The read-only answers of `/netlog`: `status` (each cluster's logging settings, delegated
namespaces, ingest rate and open alert groups; mutes and rejects) and `routes test` (where an event
with given fields would be sent)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.adapters.kube import Clusters, KubeError
from bot.adapters.store import Store
from bot.core import commands as cmd
from bot.core.netlogging import LoggingSpec
from bot.core.routing import RoutingTable
from bot.render import replies
from bot.render.replies import Reply
from bot.services.netlogging import pick_cluster
from bot.settings import RouteSection


class Status:
    def __init__(
        self,
        store: Store,
        clusters: Clusters,
        routing: RoutingTable,
        routes: tuple[RouteSection, ...],
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.clusters = clusters
        self.routing = routing
        self.routes = routes
        self.clock = clock

    def status(self, requested: str | None) -> Reply:
        names = [pick_cluster(self.clusters, requested)] if requested else self.clusters.names()
        now = self.clock()
        groups = self.store.grouping.headers()
        sections = []
        for name in names:
            newest, last_hour = self.store.events.cluster_activity(name, now - timedelta(hours=1))
            open_groups = sum(1 for g in groups if dict(g.labels).get("cluster") == name)
            spec, delegated = self._settings(name)
            sections.append(replies.ClusterStatus(name, spec, delegated, newest, last_hour / 60, open_groups))
        return replies.status(
            sections,
            self.store.mutes.active(now),
            self.store.events.reject_count(),
            now,
            self.store.events.reject_counts(now - timedelta(hours=1), now + timedelta(seconds=1)),
        )

    def route_test(self, command: cmd.RoutesTest) -> Reply:
        fields = dict(command.matchers)
        return replies.routes(fields, self.routing.route(fields), self.routes)

    def _settings(self, cluster: str) -> tuple[LoggingSpec | str, list[str] | str]:
        """The cluster's NetworkLogging and delegated namespaces, or why they cannot be read."""
        try:
            client = self.clusters.client(cluster)
            return LoggingSpec.from_object(client.get_logging()), client.annotated_namespaces()
        except KubeError as error:
            return str(error), ""
