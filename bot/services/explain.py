"""Why was a flow denied, and what minimal policy would allow it: the cluster's NetworkPolicies and
the workloads' labels read through the Kubernetes adapter, judged by the pure evaluator
(`bot.core.netpol`). Explain, propose, and the operators' Apply and withdraw of proposals.

Labels come from a running pod of the workload (the alert names the workload, as Hubble resolved
it), else from the workload's pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job) when
no pod of it runs any more. The endpoints known for the "no broader" check are every workload with a
running pod in the two namespaces, and both ends of the flow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.adapters.kube import APPLY_ACCESS, WORKLOAD_KINDS, ClusterClient, Clusters, KubeError, may
from bot.core import netpol
from bot.core.events import workload_name
from bot.core.netlogging import Refused
from bot.core.netpol import Address, Explanation, Flow, NodeRef, Pod, PolicyError, WorkloadRef
from bot.render import explain as render
from bot.render import replies
from bot.render.replies import Reply
from bot.services.netlogging import pick_cluster

#: What the bot writes on the policies it creates.
APPROVED_BY = "netlog-bot/approved-by"
FOR_FLOW = "netlog-bot/flow"


class CannotExplain(Exception):
    """The flow cannot be judged (unreadable, an endpoint not found); `str()` is a sentence."""


class Explainer:
    def __init__(self, clusters: Clusters, networks: Mapping[str, str]) -> None:
        self.clusters = clusters
        self.networks = dict(networks)  # name -> CIDR, from the `networks` setting

    def cluster(self, requested: str | None) -> str:
        try:
            return pick_cluster(self.clusters, requested)
        except Refused as error:
            raise CannotExplain(str(error)) from None

    def explain(self, cluster: str, text: str, annotations: Mapping[str, str] | None = None) -> Explanation:
        """Reads and judges; KubeError (a sentence) when the cluster does not answer or refuses."""
        try:
            ref = netpol.parse_flow(text, self.networks)
        except PolicyError as error:
            raise CannotExplain(str(error)) from None
        reading = _Reading(self.clusters.client(cluster))
        flow = Flow(reading.endpoint(ref.src), reading.endpoint(ref.dest), ref.port, ref.protocol)
        policies = reading.policies({e.namespace for e in (flow.src, flow.dest) if isinstance(e, Pod)})
        verdict = netpol.evaluate(policies, flow)
        if ref.protocol == "ICMP":
            proposal: netpol.Proposal | netpol.NoProposal = netpol.NoProposal(
                "NetworkPolicies cannot name ICMP: a policy allowing it would allow every port"
            )
        else:
            proposal = netpol.propose(policies, flow, reading.known(), annotations)
        return Explanation(cluster, flow, verdict, proposal, asked=text.strip())

    def propose_for_apply(self, cluster: str, text: str, user: str, shown: str) -> netpol.Proposal:
        """The proposal read afresh at Apply time, annotated with who approved it and for which flow;
        refused when it is no longer what the card showed (`shown`: its digest)."""
        try:
            label = netpol.parse_flow(text, self.networks).label
        except PolicyError as error:
            raise CannotExplain(str(error)) from None
        explanation = self.explain(cluster, text, {APPROVED_BY: user, FOR_FLOW: label})
        if isinstance(explanation.proposal, netpol.NoProposal):
            raise CannotExplain(f"Nothing to apply now: {explanation.proposal.reason}.")
        if shown and netpol.proposal_digest(explanation.proposal.policies) != shown:
            raise CannotExplain(
                "The cluster's policies or the workloads' labels changed since this card was made, and "
                "so would the policy: run `/netlog propose` again to see what it would be now."
            )
        return explanation.proposal


class _Reading:
    """One explanation's reads of one cluster, each made once."""

    def __init__(self, client: ClusterClient) -> None:
        self.client = client
        self._namespaces: dict[str, dict[str, str]] | None = None
        self._pods: dict[str, dict[str, Pod]] = {}
        self._extra: list[Pod] = []

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        if self._namespaces is None:
            self._namespaces = self.client.namespace_labels()
        if namespace not in self._namespaces:
            raise CannotExplain(f"There is no namespace `{namespace}` on {self.client.name}.")
        return self._namespaces[namespace]

    def workloads(self, namespace: str) -> dict[str, Pod]:
        """The namespace's running workloads by name, each with the labels of one of its pods."""
        if namespace not in self._pods:
            labels = self.namespace_labels(namespace)
            found: dict[str, Pod] = {}
            for manifest in self.client.pods(namespace):
                if (manifest.get("status") or {}).get("phase") not in ("Running", "Pending"):
                    continue
                name = _workload_of(manifest)
                if name and name not in found:
                    found[name] = netpol.pod_of(manifest, name, labels)
            self._pods[namespace] = found
        return self._pods[namespace]

    def endpoint(self, ref: netpol.EndpointRef) -> netpol.Endpoint:
        if isinstance(ref, Address):
            return ref
        if isinstance(ref, NodeRef):
            raise CannotExplain(
                f"{ref.label} is a node: policies see nodes (and hostNetwork pods) only by IP address, "
                "which the alert does not show. Ask about the node's IP instead, e.g. "
                f"`10.128.0.9 → …` (`kubectl get node {ref.name} -o wide`)."
            )
        return self.pod(ref)

    def pod(self, ref: WorkloadRef) -> Pod:
        running = self.workloads(ref.namespace).get(ref.name)
        if running is not None:
            return running
        labels = self.namespace_labels(ref.namespace)
        for kind in WORKLOAD_KINDS:
            workload = self.client.workload(kind, ref.namespace, ref.name)
            if workload is not None:
                pod = netpol.template_pod(workload, ref.name, labels)
                self._extra.append(pod)
                return pod
        raise CannotExplain(
            f"No pod of `{ref.label}` runs on {self.client.name}, and no Deployment, StatefulSet, DaemonSet, "
            "ReplicaSet or Job of that name exists to read its labels from."
        )

    def policies(self, namespaces: set[str]) -> list[netpol.NetworkPolicy]:
        found = []
        for namespace in sorted(namespaces):
            for manifest in self.client.network_policies(namespace):
                try:
                    found.append(netpol.NetworkPolicy.parse(manifest))
                except (PolicyError, KeyError, TypeError, ValueError, AttributeError) as error:
                    name = (manifest.get("metadata") or {}).get("name", "?")
                    raise CannotExplain(f"I cannot read NetworkPolicy {namespace}/{name}: {error}") from None
        return found

    def known(self) -> list[netpol.Endpoint]:
        return [*(pod for pods in self._pods.values() for pod in pods.values()), *self._extra]


def _workload_of(manifest: Mapping[str, Any]) -> str | None:
    """The workload name an alert shows for this pod: its controller's (a Deployment's, not its
    ReplicaSet's), else the pod's name without the generated suffixes; as the parser names it."""
    metadata = manifest.get("metadata") or {}
    owners = [o for o in metadata.get("ownerReferences") or () if o.get("controller")]
    owner = owners[0] if owners else {}
    name, _ = workload_name(metadata.get("name"), owner.get("name"), owner.get("kind"))
    return name


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    cluster: str
    namespace: str
    name: str
    approved_by: str
    flow: str
    created: str
    uid: str = ""


class Proposals:
    """Apply, list and withdraw what the bot created (label app.kubernetes.io/managed-by=netlog-bot)."""

    def __init__(self, clusters: Clusters, explainer: Explainer, clock: Callable[[], datetime]) -> None:
        self.clusters = clusters
        self.explainer = explainer
        self.clock = clock

    def apply(self, cluster: str, text: str, user: str, shown: str = "") -> list[str]:
        """Creates the proposal's policies, all or none; their `namespace/name`s."""
        proposal = self.explainer.propose_for_apply(cluster, text, user, shown)
        client = self.clusters.client(cluster)
        created: list[netpol.NetworkPolicy] = []
        for policy in proposal.policies:
            try:
                client.create_network_policy(policy.manifest())
            except KubeError as error:
                # Half a proposal (egress allowed, ingress not) allows nothing: take back what was made.
                undone = []
                for made in created:
                    try:
                        client.delete_network_policy(made.namespace, made.name)
                        undone.append(f"{made.namespace}/{made.name}")
                    except KubeError:
                        pass
                taken_back = f" I deleted {', '.join(undone)}, created just before." if undone else ""
                raise KubeError(f"{error}{taken_back}") from None
            created.append(policy)
        return [f"{p.namespace}/{p.name}" for p in created]

    def listing(self, cluster: str) -> list[ManagedPolicy]:
        found = []
        for manifest in self.clusters.client(cluster).managed_policies():
            metadata = manifest.get("metadata") or {}
            annotations = metadata.get("annotations") or {}
            found.append(
                ManagedPolicy(
                    cluster,
                    str(metadata.get("namespace", "")),
                    str(metadata.get("name", "")),
                    str(annotations.get(APPROVED_BY, "?")),
                    str(annotations.get(FOR_FLOW, "?")),
                    str(metadata.get("creationTimestamp", "")),
                    str(metadata.get("uid", "")),
                )
            )
        return sorted(found, key=lambda p: (p.namespace, p.name))

    def withdraw(self, cluster: str, namespace: str, name: str) -> None:
        """Deletes one of the bot's policies; refuses a policy the bot did not create. The delete is
        conditional on the object listed (its uid): one replaced meanwhile is not deleted."""
        mine = {(p.namespace, p.name): p.uid for p in self.listing(cluster)}
        if (namespace, name) not in mine:
            raise CannotExplain(
                f"`{namespace}/{name}` is not a policy netlog-bot created on {cluster} (`/netlog proposals` "
                "lists those); I only withdraw my own."
            )
        self.clusters.client(cluster).delete_network_policy(namespace, name, mine[(namespace, name)])


def apply_refusal(clusters: Clusters, cluster: str) -> str | None:
    """None when the bot may create and delete NetworkPolicies on `cluster` (asked of the API server
    with SelfSubjectAccessReviews, nothing created), else why Apply is not offered."""
    try:
        client = clusters.client(cluster)
        missing = [a.verb for a in APPLY_ACCESS if not may(client, a)]
    except KubeError as error:
        return f"Apply is not offered: I could not ask {cluster} whether I may create policies ({error})"
    if not missing:
        return None
    return (
        f"Apply is not offered: the bot may not {' or '.join(missing)} NetworkPolicies on {cluster} "
        "(opt-in: deploy/kubernetes/rbac-apply.yaml). Apply it with kubectl instead."
    )


class PolicyCommands:
    """`/netlog explain`, `propose`, `proposals`, `withdraw`, and Apply on a proposal, as replies."""

    def __init__(
        self,
        explainer: Explainer,
        proposals: Proposals,
        may_apply: Callable[[str], str | None],
    ) -> None:
        self.explainer = explainer
        self.proposals = proposals
        #: For a cluster: None when the bot may create and delete NetworkPolicies there, else why not.
        self.may_apply = may_apply

    def explain(self, flow: str, requested: str | None) -> Reply:
        try:
            cluster = self.explainer.cluster(requested)
            return render.explanation_reply(self.explainer.explain(cluster, flow))
        except CannotExplain as error:
            return replies.problem(str(error))

    def proposal(self, flow: str, requested: str | None) -> tuple[str, netpol.Explanation] | Reply:
        """(cluster, explanation) with a proposal to show, or the reply that ends it here."""
        try:
            cluster = self.explainer.cluster(requested)
            explanation = self.explainer.explain(cluster, flow)
        except CannotExplain as error:
            return replies.problem(str(error))
        if not isinstance(explanation.proposal, netpol.Proposal):
            return render.proposal_reply(explanation, None)
        return cluster, explanation

    def listing(self, requested: str | None) -> Reply:
        try:
            cluster = self.explainer.cluster(requested)
        except CannotExplain as error:
            return replies.problem(str(error))
        return render.proposals_reply(cluster, self.proposals.listing(cluster))
