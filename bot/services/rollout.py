"""Whether the nodes applied a NetworkLogging change. anetd on each node records an
`UpdateNetworkLogging` event naming the resourceVersion it applied, or an `InvalidNetworkLogging`
warning. A watch on those events, which the API server ends after a timeout, runs as a background
task and answers on the person's response_url: no listener thread waits for the nodes.

The first node's event starts a short settling watch for the others (the nodes apply a change
within about a second of each other), so the answer counts them all rather than the quickest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.adapters.kube import ClusterClient, Clusters, KubeError, NodeEvent
from bot.render import replies
from bot.render.replies import Reply
from bot.services.background import BackgroundTasks
from bot.services.netlogging import Rollout

log = logging.getLogger(__name__)

EVENT_WAIT = 30  # seconds to watch for the nodes' first event
SETTLE = 1  # seconds to watch for the other nodes after the first one reported

Respond = Callable[[Reply], None]  # an answer on the response_url of the click that applied the change


@dataclass
class NodeReports:
    """What the nodes said so far about one change."""

    rollout: Rollout
    applied: int = 0
    invalid: str | None = None  # the latest InvalidNetworkLogging warning that concerns this change
    last_seen: str | None = None  # the resourceVersion of the last event, where a later watch resumes

    def add(self, event: NodeEvent) -> None:
        self.last_seen = event.resource_version or self.last_seen
        # A whole number: the event for resourceVersion 123 is not about a change to 12.
        version = re.search(r"resourceVersion = (\d+)", event.message)
        mentioned = version is not None and version.group(1) == self.rollout.resource_version
        if event.reason == "UpdateNetworkLogging" and mentioned:
            self.applied += 1
        # A warning naming no resourceVersion may be about this change; one naming another is not.
        if (
            event.type == "Warning"
            and event.reason == "InvalidNetworkLogging"
            and (mentioned or "resourceVersion" not in event.message)
        ):
            self.invalid = event.message

    def reply(self) -> Reply:
        cluster = self.rollout.cluster
        if self.invalid is not None:
            return replies.problem(f"The nodes report InvalidNetworkLogging on {cluster}: {self.invalid}")
        return replies.nodes_applied(cluster, self.rollout.resource_version, self.applied)


class RolloutReports:
    def __init__(self, clusters: Clusters, background: BackgroundTasks, wait: int = EVENT_WAIT) -> None:
        self.clusters = clusters
        self.background = background
        self.wait = wait

    def follow(self, rollout: Rollout, respond: Respond) -> None:
        """Answers on `respond` once the nodes reported, or nobody did within the wait."""
        self.background.submit(lambda: self._answer(rollout, respond))

    def report(self, rollout: Rollout) -> Reply:
        reports = NodeReports(rollout)
        try:
            client = self.clusters.client(rollout.cluster)
            self._watch(client, reports, self.wait, until_first=True)
            if reports.applied and reports.invalid is None:
                self._watch(client, reports, SETTLE, until_first=False)
        except KubeError as error:
            return replies.problem(f"Changed, but I could not read the nodes' events: {error}")
        return reports.reply()

    def _answer(self, rollout: Rollout, respond: Respond) -> None:
        try:
            reply = self.report(rollout)
        except Exception:  # the person still gets an answer, as the handlers give one
            log.exception("/netlog: the rollout report of %s failed", rollout.cluster)
            reply = replies.problem("Something went wrong on my side; the bot's log has the details.")
        respond(reply)

    @staticmethod
    def _watch(client: ClusterClient, reports: NodeReports, seconds: int, *, until_first: bool) -> None:
        for event in client.watch_logging_events(seconds, since=reports.last_seen):
            reports.add(event)
            if reports.invalid is not None or (until_first and reports.applied):
                return
