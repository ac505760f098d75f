"""`/netlog` behind the Slack handlers: parse, authorize, and hand each command to the service for its
concern. Answers are `Reply` objects the handlers send.

Every mutating command goes: authorize -> confirmation card (current and new value, meaning,
warnings, Apply/Cancel) -> Apply re-authorizes and claims the card once (a second click is a no-op,
a card older than 10 minutes expires) -> change -> audit row + audit-channel line -> re-read; after
a NetworkLogging change, the nodes' rollout is reported on the same response_url when they answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.adapters.cloudlogging import LoggingError
from bot.adapters.kube import KubeError
from bot.adapters.metrics import Metrics
from bot.core import commands as cmd
from bot.core import netpol
from bot.core.audit import AuditEntry, AuditResult
from bot.core.netlogging import Refused
from bot.render import explain as explain_render
from bot.render import ids, replies
from bot.render.history import answer_reply
from bot.render.replies import Reply
from bot.services.access import Access
from bot.services.audit import Auditor
from bot.services.confirmations import Confirmations, PendingChange
from bot.services.digest import DigestCommands
from bot.services.explain import CannotExplain, PolicyCommands
from bot.services.history import HistoryQueries, NoAnswer
from bot.services.mutes import Mutes
from bot.services.netlogging import LoggingChanges, Rollout, pick_cluster
from bot.services.rollout import Respond, RolloutReports
from bot.services.status import Status


class Netlog:
    def __init__(
        self,
        access: Access,
        confirmations: Confirmations,
        changes: LoggingChanges,
        rollouts: RolloutReports,
        mutes: Mutes,
        status: Status,
        auditor: Auditor,
        clock: Callable[[], datetime],
        history: HistoryQueries,
        digests: DigestCommands,
        policies: PolicyCommands,
        metrics: Metrics | None = None,
    ) -> None:
        self.access = access
        self.confirmations = confirmations
        self.changes = changes
        self.rollouts = rollouts
        self.mutes = mutes
        self.status = status
        self.auditor = auditor
        self.clock = clock
        self.history = history
        self.digests = digests
        self.policies = policies
        self.metrics = metrics

    def handle(self, user: str, text: str, channel: str | None = None) -> Reply:
        """The answer to `/netlog text` from `user`, asked in `channel`."""
        try:
            command = cmd.parse(text)
        except cmd.CommandError as error:
            self._count("(invalid)", "syntax_error")
            return replies.syntax_error(str(error), cmd.help_text())
        name = cmd.command_name(command)
        if not self.access.allowed(user, name):
            if isinstance(command, cmd.MUTATING) or (isinstance(command, cmd.Digest) and command.now):
                self._audit(user, name, "refused", f"/netlog {text}")
            self._count(name, "refused")
            return self.access.refusal(name)
        try:
            reply = self._answer(user, command, text, channel)
        except (KubeError, Refused) as error:
            self._count(name, "failed")
            return replies.problem(str(error))
        self._count(name, "confirm" if isinstance(command, cmd.MUTATING) else "answered")
        return reply

    def apply(self, user: str, change_id: str, respond: Respond) -> None:
        """Answers the click on `respond`, then, for a NetworkLogging change, the rollout report."""
        reply, rollout = self._apply(user, change_id)
        respond(reply)
        if rollout is not None:
            self.rollouts.follow(rollout, respond)

    def cancel(self, user: str, change_id: str) -> Reply:
        outcome, _ = self.confirmations.claim(change_id, "cancelled")
        self._count("cancel", "cancelled" if outcome == "claimed" else outcome)
        return replies.note(
            "Cancelled; nothing was changed." if outcome == "claimed" else f"Already {outcome}."
        )

    def mute_group(self, user: str, group_key: str, duration: timedelta, channel: str) -> Reply:
        """A mute button on an alert: mute exactly that group (its labels) for `duration`."""
        if not self.access.allowed(user, "mute"):
            self._audit(user, "mute", "refused", f"button on {group_key}")
            self._count("mute button", "refused")
            return self.access.refusal("mute")
        self._count("mute button", "applied")
        return self.mutes.mute_alert(user, group_key, duration, channel)

    def flow_button(self, user: str, action: str, value: str) -> Reply:
        """ "Why denied?" on an alert's flow, or "Propose a policy" under an explanation: the value
        carries the cluster and the flow as the alert shows it."""
        cluster, _, flow = value.partition(ids.FLOW_SEPARATOR)
        command: cmd.Command = (
            cmd.Explain(flow, cluster) if action == ids.EXPLAIN else cmd.Propose(flow, cluster)
        )
        name = cmd.command_name(command)
        if not self.access.allowed(user, name):
            self._count(f"{name} button", "refused")
            return self.access.refusal(name)
        self._count(f"{name} button", "answered")
        try:
            return self._answer(user, command, f"{name} {flow} --cluster {cluster}", None)
        except (KubeError, Refused) as error:
            return replies.problem(str(error))

    def _propose(self, user: str, command: cmd.Propose, text: str) -> Reply:
        found = self.policies.proposal(command.flow, command.cluster)
        if isinstance(found, Reply):
            return found
        cluster, explanation = found
        why_not = (
            None
            if self.access.allowed(user, "apply-proposal")
            else "Only operators can apply a proposal here; apply it with kubectl, or ask an operator."
        )
        why_not = why_not or self.policies.may_apply(cluster)
        card = explain_render.proposal_card(explanation)
        if why_not or card is None:
            return explain_render.proposal_reply(explanation, why_not)
        assert isinstance(explanation.proposal, netpol.Proposal)  # policies.proposal made sure
        shown = netpol.proposal_digest(explanation.proposal.policies)
        change = PendingChange(cmd.ApplyProposal(command.flow, shown), cluster, text)
        return self.confirmations.create(user, change, card)

    def _count(self, name: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.command(name, outcome)

    def _answer(self, user: str, command: cmd.Command, text: str, channel: str | None) -> Reply:
        if isinstance(command, cmd.Help):
            return replies.help_reply(cmd.help_text())
        if isinstance(command, cmd.Status):
            return self.status.status(command.cluster)
        if isinstance(command, cmd.RoutesTest):
            return self.status.route_test(command)
        if isinstance(command, cmd.ListMutes):
            return self.mutes.listing()
        if isinstance(command, cmd.Recent | cmd.Top):
            try:
                return answer_reply(self.history.answer(user, command))
            except (NoAnswer, LoggingError) as error:
                return replies.problem(str(error))
        if isinstance(command, cmd.Digest):
            return self.digests.answer(user, command, channel)
        if isinstance(command, cmd.Mute | cmd.Unmute):
            return self.confirmations.create(
                user, PendingChange(command, None, text), self.mutes.card(command)
            )
        if isinstance(command, cmd.Explain):
            return self.policies.explain(command.flow, command.cluster)
        if isinstance(command, cmd.Propose):
            return self._propose(user, command, text)
        if isinstance(command, cmd.ListProposals):
            return self.policies.listing(command.cluster)
        if isinstance(command, cmd.Withdraw):
            cluster = pick_cluster(self.policies.proposals.clusters, command.cluster)
            card = explain_render.withdraw_card(cluster, command.namespace, command.name)
            return self.confirmations.create(user, PendingChange(command, cluster, text), card)
        if isinstance(command, cmd.ApplyProposal):
            return replies.problem("A proposal is applied with the Apply button of `/netlog propose`.")
        cluster, card = self.changes.card(command)
        return self.confirmations.create(user, PendingChange(command, cluster, text), card)

    def _apply(self, user: str, change_id: str) -> tuple[Reply, Rollout | None]:
        saved = self.confirmations.peek(change_id)  # an unknown card: the claim below answers it
        if saved is not None and not self.access.allowed(user, cmd.command_name(saved.command)):
            self._audit(user, "apply", "refused", f"card {change_id}")
            self._count("apply", "refused")
            return self.access.refusal("apply"), None
        outcome, change = self.confirmations.claim(change_id, "applied")
        if outcome == "expired":
            self._count("apply", "expired")
            return replies.problem(
                "This card is older than 10 minutes and has expired. Run the command again."
            ), None
        if change is None:
            self._count("apply", f"already {outcome}")
            return replies.note(f"Nothing to do: this change was already {outcome}."), None
        name = cmd.command_name(change.command)
        try:
            done = self._execute(user, change)
        except (KubeError, Refused, CannotExplain) as error:
            self._audit(user, name, "failed", str(error), change.cluster)
            self._count(name, "failed")
            return replies.problem(str(error)), None
        self._count(name, "applied")
        return done

    def _execute(self, user: str, change: PendingChange) -> tuple[Reply, Rollout | None]:
        command, cluster, text = change.command, change.cluster, change.text
        if isinstance(command, cmd.Mute):
            return self.mutes.mute(user, command), None
        if isinstance(command, cmd.Unmute):
            return self.mutes.unmute(user, command, text), None
        assert cluster is not None  # the card resolved it
        if isinstance(command, cmd.ApplyProposal):
            created = self.policies.proposals.apply(cluster, command.flow, user, command.shown)
            names = ", ".join(created)
            self._audit(
                user, "apply-proposal", "applied", f"created {names} to allow {command.flow}", cluster
            )
            return replies.note(
                f"Created NetworkPolicy {names} on {cluster}; the flow is allowed once the nodes apply it "
                "(seconds). `/netlog proposals` lists what I created; "
                "`/netlog withdraw NAMESPACE/NAME` deletes it."
            ), None
        if isinstance(command, cmd.Withdraw):
            self.policies.proposals.withdraw(cluster, command.namespace, command.name)
            target = f"{command.namespace}/{command.name}"
            self._audit(user, "withdraw", "applied", f"deleted NetworkPolicy {target}", cluster)
            return replies.note(f"Deleted NetworkPolicy {target} on {cluster}."), None
        if isinstance(command, cmd.NamespaceLogging):
            return self.changes.set_namespace(user, command, cluster, text), None
        return self.changes.set_logging(user, command, cluster, text)

    def _audit(
        self, user: str, action: str, result: AuditResult, detail: str, cluster: str | None = None
    ) -> None:
        self.auditor.record(AuditEntry(self.clock(), user, action, result, detail, cluster))
