"""What `/netlog` does, behind the Slack handlers: authorization, confirmation, audit, and the calls
to Kubernetes and the store. Answers are `Reply` objects (text and blocks) the handlers send.

Every mutating command goes: authorize -> confirmation card (current and new value, meaning,
warnings, Apply/Cancel) -> Apply re-authorizes and claims the card once (a second click is a no-op,
a card older than 10 minutes expires) -> change -> audit row + audit-channel message -> re-read.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.adapters.kube import ClusterAccess, ClusterClient, KubeError, api_client
from bot.adapters.slack import SlackFailure, SlackGateway
from bot.adapters.store import Store
from bot.core import commands as cmd
from bot.core.audit import AuditEntry, AuditResult
from bot.core.durations import format_duration
from bot.core.grouping import GroupKey
from bot.core.mutes import Mute, matchers_of_group, mute_duration
from bot.core.netlogging import DENY_ANNOTATION, LoggingSpec, Refused, plan
from bot.core.outbox import AuditLine
from bot.render import replies
from bot.render.blocks import code
from bot.render.replies import Reply
from bot.settings import Settings

log = logging.getLogger(__name__)

CARD_LIFETIME = timedelta(minutes=10)
GROUPS_CACHE = 300.0  # seconds a user group's members are trusted before asking Slack again
EVENT_WAIT = 30.0  # how long to watch for the nodes' UpdateNetworkLogging events


@dataclass
class Operations:
    settings: Settings
    store: Store
    slack: SlackGateway
    clock: Callable[[], datetime]
    clients: dict[str, ClusterClient] = field(default_factory=dict)
    #: change ID -> (cluster, resourceVersion) of NetworkLogging changes whose rollout to report
    _rollouts: dict[str, tuple[str, str]] = field(default_factory=dict)
    _groups: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)

    # -- entry points ---------------------------------------------------------------------------

    def handle(self, user: str, text: str) -> Reply:
        try:
            command = cmd.parse(text)
        except cmd.CommandError as error:
            return replies.syntax_error(str(error), cmd.help_text())
        name = cmd.command_name(command)
        if not self.allowed(user, name):
            if isinstance(command, cmd.MUTATING):
                self.audit(user, name, None, None, None, "refused", f"/netlog {text}")
            return replies.refused(name, self.settings.file.access)
        try:
            return self._dispatch(user, command, text)
        except (KubeError, Refused) as error:
            return replies.problem(str(error))

    def apply(self, user: str, change_id: str) -> Reply:
        if not self._may_apply(user, change_id):
            self.audit(user, "apply", None, None, None, "refused", f"card {change_id}")
            return replies.refused("apply", self.settings.file.access)
        outcome, saved = self.store.pending.claim(change_id, "applied", self.clock(), CARD_LIFETIME)
        if outcome == "expired":
            return replies.problem(
                "This card is older than 10 minutes and has expired. Run the command again."
            )
        if outcome != "claimed":
            return replies.note(f"Nothing to do: this change was already {outcome}.")
        command = _load(saved["command"])
        cluster = saved.get("cluster")
        try:
            return self._execute(user, command, cluster, saved["text"], change_id)
        except (KubeError, Refused) as error:
            self.audit(user, cmd.command_name(command), cluster, None, None, "failed", str(error))
            return replies.problem(str(error))

    def cancel(self, user: str, change_id: str) -> Reply:
        outcome, _ = self.store.pending.claim(change_id, "cancelled", self.clock(), CARD_LIFETIME)
        return replies.note(
            "Cancelled; nothing was changed." if outcome == "claimed" else f"Already {outcome}."
        )

    def mute_group(self, user: str, group_key: str, duration: timedelta, channel: str) -> Reply:
        """A mute button on an alert: mute exactly that group (its labels) for `duration`."""
        if not self.allowed(user, "mute"):
            self.audit(user, "mute", None, None, None, "refused", f"button on {group_key}")
            return replies.refused("mute", self.settings.file.access)
        try:
            matchers = matchers_of_group(GroupKey.decode(group_key).labels)
        except ValueError:  # not a key this bot rendered
            return replies.problem("This button does not name an alert group I know; use `/netlog mute`.")
        try:
            return self._mute(user, cmd.Mute(matchers, duration, f"from an alert in {channel}"), group_key)
        except Refused as error:
            return replies.problem(str(error))

    # -- authorization --------------------------------------------------------------------------

    def allowed(self, user: str, command: str) -> bool:
        access = self.settings.file.access
        if access.permission(command) == "everyone" or user in access.operators:
            return True
        return any(user in self._members(group) for group in access.operator_groups)

    def _may_apply(self, user: str, change_id: str) -> bool:
        saved = self.store.pending.get(change_id)
        if not saved:
            return True  # an unknown card: claim_pending answers it
        return self.allowed(user, cmd.command_name(_load(saved["command"])))

    def _members(self, group: str) -> frozenset[str]:
        cached = self._groups.get(group)
        if cached and time.monotonic() - cached[0] < GROUPS_CACHE:
            return cached[1]
        try:
            members = frozenset(self.slack.usergroup_members(group))
        except SlackFailure as failure:
            log.warning("access: cannot read user group %s (%s); treating it as empty", group, failure.error)
            members = cached[1] if cached else frozenset()
        self._groups[group] = (time.monotonic(), members)
        return members

    # -- commands -------------------------------------------------------------------------------

    def _dispatch(self, user: str, command: cmd.Command, text: str) -> Reply:
        if isinstance(command, cmd.Help):
            return replies.help_reply(cmd.help_text())
        if isinstance(command, cmd.Status):
            return self._status(command.cluster)
        if isinstance(command, cmd.RoutesTest):
            fields = dict(command.matchers)
            return replies.routes(fields, self.settings.routing.route(fields), self.settings.file.routes)
        if isinstance(command, cmd.ListMutes):
            return replies.mutes(self.store.mutes.active(self.clock()), self.clock())
        if isinstance(command, cmd.Unmute):
            return self._confirm(user, command, None, text, replies.unmute_card(command.mute_id))
        if isinstance(command, cmd.Mute):
            duration = self._mute_duration(command)
            return self._confirm(
                user, command, None, text, replies.mute_card(command, duration, self.clock())
            )
        cluster = self._cluster(command.cluster)
        if isinstance(command, cmd.SetLogging):
            current = LoggingSpec.from_object(self.client(cluster).get_logging())
            change = plan(current, command)
            return self._confirm(
                user, command, cluster, text, replies.logging_card(cluster, command.kind, change)
            )
        assert isinstance(command, cmd.NamespaceLogging)
        annotated = self.client(cluster).namespace_annotated(command.namespace)
        return self._confirm(
            user, command, cluster, text, replies.namespace_card(cluster, command, annotated)
        )

    def _confirm(
        self, user: str, command: cmd.Command, cluster: str | None, text: str, card: replies.Card
    ) -> Reply:
        change_id = uuid.uuid4().hex
        saved = {"command": _dump(command), "cluster": cluster, "text": text}
        self.store.pending.add(change_id, user, saved, self.clock())
        return card.with_buttons(change_id)

    def follow_up(self, change_id: str) -> Reply | None:
        """After an applied NetworkLogging change: whether the nodes applied it."""
        rollout = self._rollouts.pop(change_id, None)
        return self.node_report(*rollout) if rollout else None

    def _execute(
        self, user: str, command: cmd.Command, cluster: str | None, text: str, change_id: str
    ) -> Reply:
        if isinstance(command, cmd.Mute):
            return self._mute(user, command)
        if isinstance(command, cmd.Unmute):
            ended = self.store.mutes.end(command.mute_id, self.clock())
            if ended is None:
                return replies.problem(
                    f"There is no active mute #{command.mute_id}; `/netlog mutes` lists them."
                )
            self.audit(user, "unmute", None, ended.label, None, "applied", f"/netlog {text}")
            return replies.note(f"Mute #{ended.id} ({code(ended.label)}) ended. Alerts for it resume.")
        assert cluster is not None
        client = self.client(cluster)
        if isinstance(command, cmd.NamespaceLogging):
            before = client.namespace_annotated(command.namespace)
            client.set_namespace_logging(command.namespace, command.on)
            # Audited as soon as the write succeeded: a failed re-read below must not hide it.
            self.audit(
                user,
                "ns-logging",
                cluster,
                _annotation(command.namespace, before),
                _annotation(command.namespace, command.on),
                "applied",
                f"/netlog {text}",
            )
            return self._reread(
                cluster,
                lambda: replies.namespace_done(
                    cluster, command.namespace, client.namespace_annotated(command.namespace)
                ),
            )
        assert isinstance(command, cmd.SetLogging)
        change: list[Any] = []

        def build(current: dict[str, Any]) -> dict[str, Any]:
            change.append(plan(LoggingSpec.from_object(current), command))
            return dict(change[-1].patch)

        updated = client.patch_logging(build)
        resource_version = str(updated.get("metadata", {}).get("resourceVersion", "?"))
        self._rollouts[change_id] = (cluster, resource_version)
        self.audit(
            user,
            command.action,
            cluster,
            change[-1].before.short(command.kind),
            change[-1].after.short(command.kind),
            "applied",
            f"/netlog {text}",
        )
        return self._reread(
            cluster,
            lambda: replies.logging_done(
                cluster, command.kind, LoggingSpec.from_object(client.get_logging()), resource_version
            ),
        )

    def _reread(self, cluster: str, report: Callable[[], Reply]) -> Reply:
        """The new state as the API server now has it; the change itself already succeeded."""
        try:
            return report()
        except KubeError as error:
            return replies.problem(
                f"The change on {cluster} was applied, but reading it back failed: {error}"
            )

    def _mute(self, user: str, command: cmd.Mute, group_key: str | None = None) -> Reply:
        now = self.clock()
        duration = self._mute_duration(command)
        mute = Mute(0, command.matchers, now, now + duration, user, command.reason, group_key)
        mute = self.store.mutes.add(mute)
        self.audit(
            user,
            "mute",
            None,
            None,
            f"#{mute.id} {mute.label} for {format_duration(duration)}",
            "applied",
            command.reason,
        )
        return replies.note(
            f"Muted #{mute.id}: {code(mute.label)} until {mute.expires_at:%Y-%m-%d %H:%M} UTC. "
            "Denies are still stored and counted."
        )

    def _mute_duration(self, command: cmd.Mute) -> timedelta:
        limits = self.settings.file.mutes
        try:
            return mute_duration(command.duration, limits.default_duration, limits.max_duration)
        except ValueError as error:
            raise Refused(str(error).capitalize() + ".") from None

    def node_report(self, cluster: str, resource_version: str, wait: float = EVENT_WAIT) -> Reply | None:
        """Watches the nodes' events for the new resourceVersion; None when there is nothing to say."""
        deadline = time.monotonic() + wait
        while True:
            try:
                events = self.client(cluster).logging_events()
            except KubeError as error:
                return replies.problem(f"Changed, but I could not read the nodes' events: {error}")
            applied = [
                e
                for e in events
                if e.reason == "UpdateNetworkLogging" and f"resourceVersion = {resource_version}" in e.message
            ]
            invalid = [  # warnings about this change, not ones left from earlier ones
                e
                for e in events
                if e.type == "Warning"
                and e.reason == "InvalidNetworkLogging"
                and (
                    f"resourceVersion = {resource_version}" in e.message or "resourceVersion" not in e.message
                )
            ]
            if invalid:
                return replies.problem(
                    f"The nodes report InvalidNetworkLogging on {cluster}: {invalid[-1].message}"
                )
            if applied or time.monotonic() >= deadline:
                return replies.nodes_applied(cluster, resource_version, len(applied))
            time.sleep(1.0)

    # -- helpers --------------------------------------------------------------------------------

    def _cluster(self, requested: str | None) -> str:
        names = sorted(self.settings.file.clusters)
        if not names:
            raise Refused("No clusters are configured: add them under `clusters:` in the bot's config file.")
        if requested is None:
            if len(names) > 1:
                raise Refused(f"Which cluster? Add `--cluster NAME`; configured: {', '.join(names)}.")
            return names[0]
        if requested not in names:
            raise Refused(f"I don't manage a cluster `{requested}`; configured: {', '.join(names)}.")
        return requested

    def client(self, cluster: str) -> ClusterClient:
        if cluster not in self.clients:
            section = self.settings.file.clusters[cluster]
            access = ClusterAccess(section.context, section.endpoint, section.ca_certificate)
            env = self.settings.env
            try:
                raw = api_client(
                    access, in_cluster=bool(env.kubernetes_service_host), kubeconfig=env.kubeconfig
                )
            except Exception as error:
                raise KubeError(f"I cannot reach {cluster}: {error}") from None
            self.clients[cluster] = ClusterClient(cluster, raw)
        return self.clients[cluster]

    def _status(self, requested: str | None) -> Reply:
        names = [self._cluster(requested)] if requested else sorted(self.settings.file.clusters)
        now = self.clock()
        sections = []
        groups = self.store.grouping.load()
        for name in names:
            newest, last_hour = self.store.events.cluster_activity(name, now - timedelta(hours=1))
            open_groups = sum(1 for g in groups if dict(g.labels).get("cluster") == name)
            try:
                client = self.client(name)
                spec: LoggingSpec | str = LoggingSpec.from_object(client.get_logging())
                delegated: list[str] | str = client.annotated_namespaces()
            except KubeError as error:
                spec, delegated = str(error), ""
            sections.append(replies.ClusterStatus(name, spec, delegated, newest, last_hour / 60, open_groups))
        return replies.status(sections, self.store.mutes.active(now), self.store.events.reject_count(), now)

    def audit(
        self,
        user: str,
        action: str,
        cluster: str | None,
        before: str | None,
        after: str | None,
        result: AuditResult,
        detail: str,
    ) -> None:
        now = self.clock()
        entry = AuditEntry(now, user, action, result, detail, cluster, before, after)
        self.store.audit.add(asdict(entry))
        channel = self.settings.file.slack.audit_channel
        if channel:
            self.store.outbox.enqueue(AuditLine(channel, uuid.uuid4().hex, entry), now)


def _annotation(namespace: str, on: bool) -> str:
    return f"{namespace}: {DENY_ANNOTATION}={'true' if on else '(none)'}"


def _dump(command: cmd.Command) -> dict[str, Any]:
    data = asdict(command)
    for key, value in data.items():
        if isinstance(value, timedelta):
            data[key] = value.total_seconds()
    return {"type": type(command).__name__, **data}


def _load(data: dict[str, Any]) -> cmd.Command:
    kinds = {k.__name__: k for k in (cmd.SetLogging, cmd.NamespaceLogging, cmd.Mute, cmd.Unmute)}
    fields = {k: v for k, v in data.items() if k != "type"}
    if data["type"] == "Mute":
        fields["matchers"] = tuple(tuple(pair) for pair in fields["matchers"])
        fields["duration"] = timedelta(seconds=fields["duration"]) if fields["duration"] is not None else None
    return kinds[data["type"]](**fields)
