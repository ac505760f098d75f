"""The bot's App Home tab, gathered afresh each time someone opens it: per cluster, the NetworkLogging
settings (read as `/netlog status` reads them), the alert groups open there, the mutes that apply to
it, and its top namespaces of the last 24 h from the flow history."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bot.adapters.kube import Clusters, KubeError
from bot.adapters.store import Store
from bot.core import history
from bot.core.grouping import Group
from bot.core.history import FlowFilter, Window
from bot.core.mutes import Mute
from bot.core.netlogging import LoggingSpec
from bot.render.home import ClusterHome, View, applies_to, render_home

TOP_WINDOW = timedelta(hours=24)
TOP_NAMESPACES = 5


class Home:
    def __init__(self, store: Store, clusters: Clusters, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clusters = clusters
        self.clock = clock

    def view(self) -> View:
        """The Home tab. A cluster whose API server fails shows the sentence saying why; store
        failures propagate (the handler logs them, and the tab keeps its last view)."""
        now = self.clock()
        groups = self.store.grouping.headers()
        mutes = self.store.mutes.active(now)
        window = Window.since(now, TOP_WINDOW)
        return render_home([self._cluster(n, groups, mutes, window) for n in self.clusters.names()], now)

    def _cluster(
        self, name: str, groups: Sequence[Group], mutes: Sequence[Mute], window: Window
    ) -> ClusterHome:
        # Summed by the database: the tab opens often, and a busy cluster has many flows a day.
        sums = self.store.history.sums(FlowFilter(cluster=name), window, "namespace")
        return ClusterHome(
            name,
            self._spec(name),
            [g for g in groups if dict(g.labels).get("cluster") == name],
            [m for m in mutes if applies_to(m, name)],
            history.top_of(sums, {}, "namespace", TOP_NAMESPACES),
        )

    def _spec(self, cluster: str) -> LoggingSpec | str:
        try:
            return LoggingSpec.from_object(self.clusters.client(cluster).get_logging())
        except KubeError as error:  # its message is a sentence for people (403, 404, unreachable)
            return str(error)
