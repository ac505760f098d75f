"""The bot's App Home tab, gathered afresh each time someone opens it: per cluster, the NetworkLogging
settings (read as `/netlog status` reads them), the alert groups open there, the mutes that apply to
it, and its top namespaces of the last 24 h from the flow history.

Each part is shown to whoever may run the command that shows as much (`access.permissions`): the
settings with `status`, the groups (their labels: what was denied, and where) with `recent`, the
mutes with `mutes`, the top namespaces with `top`. A part the viewer may not see is neither read nor
drawn; the tab says which command it would take."""

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

#: Whether `user` may run `/netlog COMMAND` (`Access.allowed`).
May = Callable[[str, str], bool]

TOP_WINDOW = timedelta(hours=24)
TOP_NAMESPACES = 5


class Home:
    def __init__(self, store: Store, clusters: Clusters, clock: Callable[[], datetime], may: May) -> None:
        self.store = store
        self.clusters = clusters
        self.clock = clock
        self.may = may

    def view(self, user: str) -> View:
        """The Home tab as `user` may see it. A cluster whose API server fails shows the sentence
        saying why; store failures propagate (the handler logs them, and the tab keeps its last view)."""
        now = self.clock()
        status, recent, mutes, top = (self.may(user, c) for c in ("status", "recent", "mutes", "top"))
        groups = self.store.grouping.headers() if recent else None
        active = self.store.mutes.active(now) if mutes else None
        window = Window.since(now, TOP_WINDOW) if top else None
        return render_home(
            [self._cluster(n, status, groups, active, window) for n in self.clusters.names()], now
        )

    def _cluster(
        self,
        name: str,
        status: bool,
        groups: Sequence[Group] | None,
        mutes: Sequence[Mute] | None,
        window: Window | None,
    ) -> ClusterHome:
        top = None
        if window is not None:
            # Summed by the database: the tab opens often, and a busy cluster has many flows a day.
            sums = self.store.history.sums(FlowFilter(cluster=name), window, "namespace")
            top = history.top_of(sums, {}, "namespace", TOP_NAMESPACES)
        return ClusterHome(
            name,
            self._spec(name) if status else None,
            None if groups is None else [g for g in groups if dict(g.labels).get("cluster") == name],
            None if mutes is None else [m for m in mutes if applies_to(m, name)],
            top,
        )

    def _spec(self, cluster: str) -> LoggingSpec | str:
        try:
            return LoggingSpec.from_object(self.clusters.client(cluster).get_logging())
        except KubeError as error:  # its message is a sentence for people (403, 404, unreachable)
            return str(error)
