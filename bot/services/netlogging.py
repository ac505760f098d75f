"""NetworkLogging changes: the card shows the object as it is now and what the command would make of
it; Apply patches it (a merge patch built from a fresh read, carrying its resourceVersion), audits,
and re-reads it. Namespace annotations for delegated deny logging go the same way. Which nodes
applied a change is `rollout.py`'s to report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.adapters.kube import Clusters, KubeError
from bot.core import commands as cmd
from bot.core.audit import AuditEntry
from bot.core.netlogging import DENY_ANNOTATION, LoggingSpec, Plan, Refused, plan
from bot.render import replies
from bot.render.replies import Card, Reply
from bot.services.audit import Auditor


@dataclass(frozen=True, slots=True)
class Rollout:
    """A NetworkLogging change the API server took: the nodes have yet to report it."""

    cluster: str
    resource_version: str


def pick_cluster(clusters: Clusters, requested: str | None) -> str:
    names = clusters.names()
    if not names:
        raise Refused("No clusters are configured: add them under `clusters:` in the bot's config file.")
    if requested is None:
        if len(names) > 1:
            raise Refused(f"Which cluster? Add `--cluster NAME`; configured: {', '.join(names)}.")
        return names[0]
    if requested not in names:
        raise Refused(f"I don't manage a cluster `{requested}`; configured: {', '.join(names)}.")
    return requested


class LoggingChanges:
    def __init__(self, clusters: Clusters, auditor: Auditor, clock: Callable[[], datetime]) -> None:
        self.clusters = clusters
        self.auditor = auditor
        self.clock = clock

    def card(self, command: cmd.SetLogging | cmd.NamespaceLogging) -> tuple[str, Card]:
        """(cluster, card): the cluster the command names, and what Apply would change there."""
        cluster = pick_cluster(self.clusters, command.cluster)
        client = self.clusters.client(cluster)
        if isinstance(command, cmd.SetLogging):
            change = plan(LoggingSpec.from_object(client.get_logging()), command)
            return cluster, replies.logging_card(cluster, command.kind, change)
        annotated = client.namespace_annotated(command.namespace)
        return cluster, replies.namespace_card(cluster, command, annotated)

    def set_logging(
        self, user: str, command: cmd.SetLogging, cluster: str, text: str
    ) -> tuple[Reply, Rollout]:
        client = self.clusters.client(cluster)
        change: list[Plan] = []

        def build(current: dict[str, Any]) -> dict[str, Any]:  # again on a conflict, from a fresh read
            change.append(plan(LoggingSpec.from_object(current), command))
            return dict(change[-1].patch)

        updated = client.patch_logging(build)
        rollout = Rollout(cluster, str(updated.get("metadata", {}).get("resourceVersion", "?")))
        before, after = change[-1].before.short(command.kind), change[-1].after.short(command.kind)
        self._audit(user, command.action, cluster, before, after, text)
        done = self._reread(
            cluster,
            lambda: replies.logging_done(
                cluster, command.kind, LoggingSpec.from_object(client.get_logging()), rollout.resource_version
            ),
        )
        return done, rollout

    def set_namespace(self, user: str, command: cmd.NamespaceLogging, cluster: str, text: str) -> Reply:
        client = self.clusters.client(cluster)
        before = client.namespace_annotated(command.namespace)
        client.set_namespace_logging(command.namespace, command.on)
        # Audited as soon as the write succeeded: a failed re-read below must not hide it.
        self._audit(
            user,
            "ns-logging",
            cluster,
            _annotation(command.namespace, before),
            _annotation(command.namespace, command.on),
            text,
        )
        return self._reread(
            cluster,
            lambda: replies.namespace_done(
                cluster, command.namespace, client.namespace_annotated(command.namespace)
            ),
        )

    def _audit(self, user: str, action: str, cluster: str, before: str, after: str, text: str) -> None:
        entry = AuditEntry(self.clock(), user, action, "applied", f"/netlog {text}", cluster, before, after)
        self.auditor.record(entry)

    @staticmethod
    def _reread(cluster: str, report: Callable[[], Reply]) -> Reply:
        """The new state as the API server now has it; the change itself already succeeded."""
        try:
            return report()
        except KubeError as error:
            return replies.problem(
                f"The change on {cluster} was applied, but reading it back failed: {error}"
            )


def _annotation(namespace: str, on: bool) -> str:
    return f"{namespace}: {DENY_ANNOTATION}={'true' if on else '(none)'}"
