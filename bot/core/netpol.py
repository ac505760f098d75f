"""A NetworkPolicy evaluator (networking.k8s.io/v1 semantics), pure: which policies isolate a pod,
whether a flow is allowed, why not, and the smallest additive policy that would allow it, verified.

Semantics, as the API documents them (and the reference doc sums up):
- a pod is isolated for a direction when a policy of its namespace selects it (`podSelector`) and
  lists that direction in `policyTypes` (default: Ingress, plus Egress when it has egress rules);
- what an isolated pod may do is the union of the rules of every policy isolating it; a rule allows
  a peer in any of its `from`/`to` entries (none: every peer) on any of its `ports` (none: every port);
- a peer with `podSelector` only means pods of the policy's namespace; with `namespaceSelector` only,
  every pod of the matching namespaces; with both, matching pods of matching namespaces; `ipBlock`
  a CIDR minus its `except`s;
- a port is a number, a number range (`endPort`), or a name, which resolves against the container
  ports of the pod receiving the traffic; the protocol defaults to TCP;
- a pod-to-pod flow needs egress allowed at the source and ingress allowed at the destination.

What it cannot see is said by the caller (`LIMITS`). Dataplane V2 (Cilium) matches `ipBlock` against
addresses outside the cluster only, never against pods, so an `ipBlock` here matches only bare IPs.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Direction = Literal["ingress", "egress"]

#: Labels that change with each rollout of the same workload: a policy selecting them would stop
#: matching at the next rollout.
VOLATILE_LABELS = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "pod-template-generation",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
        "controller-uid",
        "batch.kubernetes.io/controller-uid",
        "job-name",
        "batch.kubernetes.io/job-name",
        "batch.kubernetes.io/job-completion-index",
        # Set per release by Helm charts and Istio: a selector holding them breaks at the upgrade.
        "app.kubernetes.io/version",
        "helm.sh/chart",
        "chart",
        "service.istio.io/canonical-revision",
    }
)
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
MANAGED_BY = {"app.kubernetes.io/managed-by": "netlog-bot"}
LIMITS = (
    "GKE FQDN network policies, AdminNetworkPolicy and Cilium's own policies are not read",
    "hostNetwork pods use their node's address, not pod labels",
    "traffic between a pod and its own node is always allowed and never reaches here",
    "node addresses: Dataplane V2 does not match them with ipBlock",
)


class PolicyError(ValueError):
    """A manifest the evaluator cannot read (the API server would have refused it too)."""


# --- selectors -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present

    def describe(self) -> str:
        values = ",".join(self.values)
        return {
            "In": f"{self.key} in ({values})",
            "NotIn": f"{self.key} notin ({values})",
            "Exists": self.key,
            "DoesNotExist": f"!{self.key}",
        }[self.operator]


@dataclass(frozen=True, slots=True)
class Selector:
    """A label selector; the empty one selects everything."""

    labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.labels) and all(
            r.matches(labels) for r in self.expressions
        )

    @property
    def everything(self) -> bool:
        return not self.labels and not self.expressions

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.labels] + [r.describe() for r in self.expressions]
        return ",".join(parts) if parts else "any"

    @classmethod
    def parse(cls, raw: object, where: str) -> Selector:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise PolicyError(f"{where} is not a label selector")
        match_labels = raw.get("matchLabels") or {}
        if not isinstance(match_labels, Mapping):
            raise PolicyError(f"{where}.matchLabels is not a map")
        expressions = []
        for item in raw.get("matchExpressions") or []:
            operator = item.get("operator") if isinstance(item, Mapping) else None
            if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
                raise PolicyError(f"{where}.matchExpressions has an unknown operator {operator!r}")
            values = tuple(str(v) for v in item.get("values") or ())
            expressions.append(Requirement(str(item.get("key", "")), operator, values))
        return cls(tuple(sorted((str(k), str(v)) for k, v in match_labels.items())), tuple(expressions))

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.labels:
            out["matchLabels"] = dict(self.labels)
        if self.expressions:
            out["matchExpressions"] = [
                {"key": r.key, "operator": r.operator, **({"values": list(r.values)} if r.values else {})}
                for r in self.expressions
            ]
        return out


# --- endpoints and flows ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pod:
    """A workload's pods as policies see them: namespace, labels, named container ports."""

    namespace: str
    name: str  # the workload's name, as alerts show it
    labels: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    namespace_labels: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    ports: Mapping[str, tuple[int, str]] = field(default_factory=dict, hash=False, compare=False)
    #: A hostNetwork pod has its node's address: policies cannot select it by its labels.
    host_network: bool = field(default=False, hash=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Address:
    """Anything policies see only by IP: outside the cluster, a node, the metadata server."""

    ip: str
    name: str | None = None  # from the `networks` setting
    cidr: str | None = None  # that network's CIDR

    @property
    def label(self) -> str:
        """As alerts show it: `metadata-server (169.254.169.254)`, or the bare IP."""
        return f"{self.name} ({self.ip})" if self.name and self.name != self.ip else self.ip


Endpoint = Pod | Address


@dataclass(frozen=True, slots=True)
class Flow:
    src: Endpoint
    dest: Endpoint
    port: int | None
    protocol: str = "TCP"

    @property
    def label(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.src.label} → {self.dest.label}{port}/{self.protocol.lower()}"


# --- policies --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IPBlock:
    cidr: str
    excepts: tuple[str, ...] = ()

    def matches(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
            network = ipaddress.ip_network(self.cidr, strict=False)
        except ValueError:
            return False
        if address.version != network.version or address not in network:
            return False
        return not any(
            address in ipaddress.ip_network(e, strict=False)
            for e in self.excepts
            if ipaddress.ip_network(e, strict=False).version == address.version
        )


@dataclass(frozen=True, slots=True)
class Peer:
    pods: Selector | None = None
    namespaces: Selector | None = None
    ip_block: IPBlock | None = None

    def matches(self, endpoint: Endpoint, policy_namespace: str) -> bool:
        if self.ip_block is not None:
            return isinstance(endpoint, Address) and self.ip_block.matches(endpoint.ip)
        if not isinstance(endpoint, Pod):
            return False
        if self.namespaces is None:
            in_namespace = endpoint.namespace == policy_namespace
        else:
            in_namespace = self.namespaces.matches(endpoint.namespace_labels)
        return in_namespace and (self.pods is None or self.pods.matches(endpoint.labels))

    def describe(self, policy_namespace: str) -> str:
        if self.ip_block is not None:
            excepts = f" except {', '.join(self.ip_block.excepts)}" if self.ip_block.excepts else ""
            return f"{self.ip_block.cidr}{excepts}"
        pods = self.pods.describe() if self.pods is not None else "any"
        who = "any pod" if pods == "any" else pods
        if self.namespaces is None:
            return f"{who} in namespace {policy_namespace}"
        names = dict(self.namespaces.labels).get(NAMESPACE_NAME_LABEL)
        if names and len(self.namespaces.labels) == 1 and not self.namespaces.expressions:
            return f"{who} from namespace {names}"
        if self.namespaces.everything:
            return f"{who} in any namespace"
        return f"{who} in namespaces {self.namespaces.describe()}"

    def manifest(self) -> dict[str, Any]:
        if self.ip_block is not None:
            block: dict[str, Any] = {"cidr": self.ip_block.cidr}
            if self.ip_block.excepts:
                block["except"] = list(self.ip_block.excepts)
            return {"ipBlock": block}
        out: dict[str, Any] = {}
        if self.namespaces is not None:
            out["namespaceSelector"] = self.namespaces.manifest()
        if self.pods is not None:
            out["podSelector"] = self.pods.manifest()
        return out


@dataclass(frozen=True, slots=True)
class PolicyPort:
    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None

    def matches(self, port: int | None, protocol: str, receiver: Endpoint) -> bool:
        if self.protocol != protocol:
            return False
        if self.port is None:
            return True
        if port is None:
            return False
        if isinstance(self.port, str):
            if not isinstance(receiver, Pod) or self.port not in receiver.ports:
                return False
            number, named_protocol = receiver.ports[self.port]
            return number == port and named_protocol == protocol
        return self.port <= port <= (self.end_port if self.end_port is not None else self.port)

    def describe(self) -> str:
        if self.port is None:
            return f"any {self.protocol} port"
        end = f"-{self.end_port}" if self.end_port is not None else ""
        return f"{self.port}{end}/{self.protocol}"

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"protocol": self.protocol}
        if self.port is not None:
            out["port"] = self.port
        if self.end_port is not None:
            out["endPort"] = self.end_port
        return out


@dataclass(frozen=True, slots=True)
class Rule:
    peers: tuple[Peer, ...] = ()  # none: every peer
    ports: tuple[PolicyPort, ...] = ()  # none: every port

    def allows(self, peer: Endpoint, flow: Flow, policy_namespace: str) -> bool:
        peer_ok = not self.peers or any(p.matches(peer, policy_namespace) for p in self.peers)
        return peer_ok and (
            not self.ports or any(p.matches(flow.port, flow.protocol, flow.dest) for p in self.ports)
        )

    def describe(self, direction: Direction, policy_namespace: str) -> str:
        side = "from" if direction == "ingress" else "to"
        peers = " or ".join(p.describe(policy_namespace) for p in self.peers) if self.peers else "anywhere"
        ports = f" on {', '.join(p.describe() for p in self.ports)}" if self.ports else ""
        return f"{side} {peers}{ports}"


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    name: str
    namespace: str
    pods: Selector
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    types: frozenset[Direction] = frozenset({"ingress"})
    labels: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)

    def selects(self, pod: Pod, direction: Direction) -> bool:
        return direction in self.types and pod.namespace == self.namespace and self.pods.matches(pod.labels)

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.ingress if direction == "ingress" else self.egress

    def allows(self, flow: Flow, direction: Direction) -> bool:
        peer = flow.src if direction == "ingress" else flow.dest
        return any(rule.allows(peer, flow, self.namespace) for rule in self.rules(direction))

    def describe_rules(self, direction: Direction) -> str:
        rules = self.rules(direction)
        if not rules:
            return f"allows no {direction} at all"
        return "allows only " + "; or ".join(r.describe(direction, self.namespace) for r in rules)

    @classmethod
    def parse(cls, manifest: Mapping[str, Any]) -> NetworkPolicy:
        metadata = manifest.get("metadata") or {}
        name, namespace = str(metadata.get("name", "")), str(metadata.get("namespace", ""))
        where = f"NetworkPolicy {namespace}/{name}"
        spec = manifest.get("spec") or {}
        ingress = tuple(_rule(r, "from", f"{where} ingress") for r in spec.get("ingress") or ())
        egress = tuple(_rule(r, "to", f"{where} egress") for r in spec.get("egress") or ())
        declared = spec.get("policyTypes")
        if declared:
            types = frozenset(_direction(t, where) for t in declared)
        else:
            # As the API server defaults it: Egress when there are egress rules (an empty list: none).
            types = frozenset({"ingress", "egress"} if spec.get("egress") else {"ingress"})
        return cls(
            name,
            namespace,
            Selector.parse(spec.get("podSelector") or {}, f"{where} podSelector"),
            ingress,
            egress,
            types,
            dict(metadata.get("labels") or {}),
            dict(metadata.get("annotations") or {}),
        )

    def manifest(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "podSelector": self.pods.manifest(),
            "policyTypes": [t.capitalize() for t in ("ingress", "egress") if t in self.types],
        }
        for direction, key in (("ingress", "from"), ("egress", "to")):
            rules = self.rules(direction)  # type: ignore[arg-type]
            if rules:
                spec[direction] = [
                    {
                        **({key: [p.manifest() for p in r.peers]} if r.peers else {}),
                        **({"ports": [p.manifest() for p in r.ports]} if r.ports else {}),
                    }
                    for r in rules
                ]
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata,
            "spec": spec,
        }


def _direction(raw: object, where: str) -> Direction:
    if raw == "Ingress":
        return "ingress"
    if raw == "Egress":
        return "egress"
    raise PolicyError(f"{where}: policyTypes holds {raw!r}, neither Ingress nor Egress")


def _rule(raw: object, key: str, where: str) -> Rule:
    """One rule; what the API server would refuse is a `PolicyError` naming it, not a crash."""
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: a rule is not a map")
    peers = []
    for item in raw.get(key) or ():
        if not isinstance(item, Mapping):
            raise PolicyError(f"{where}: a `{key}` entry is not a map")
        block = item.get("ipBlock")
        if block:
            cidrs = (
                [block.get("cidr"), *(block.get("except") or ())] if isinstance(block, Mapping) else [None]
            )
            for cidr in cidrs:
                try:
                    ipaddress.ip_network(str(cidr), strict=False)
                except ValueError:
                    raise PolicyError(f"{where}: ipBlock holds {cidr!r}, which is not a CIDR") from None
            peers.append(Peer(ip_block=IPBlock(str(cidrs[0]), tuple(str(e) for e in cidrs[1:]))))
            continue
        # A selector given as null is absent, as the API server reads it.
        pods = (
            Selector.parse(item["podSelector"], f"{where} podSelector")
            if item.get("podSelector") is not None
            else None
        )
        spaces = (
            Selector.parse(item["namespaceSelector"], f"{where} namespaceSelector")
            if item.get("namespaceSelector") is not None
            else None
        )
        peers.append(Peer(pods, spaces))
    ports = []
    for item in raw.get("ports") or ():
        if not isinstance(item, Mapping):
            raise PolicyError(f"{where}: a port entry is not a map")
        port, end_port = item.get("port"), item.get("endPort")
        if not (port is None or isinstance(port, int | str)) or not (
            end_port is None or isinstance(end_port, int)
        ):
            raise PolicyError(
                f"{where}: the port {port!r} (endPort {end_port!r}) is neither a number nor a name"
            )
        ports.append(PolicyPort(str(item.get("protocol") or "TCP").upper(), port, end_port))
    return Rule(tuple(peers), tuple(ports))


# --- verdicts --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Side:
    """One direction's verdict at one pod: the policies isolating it and those allowing the flow."""

    direction: Direction
    pod: Pod | None  # None: the endpoint is not a pod, so no policy applies on this side
    isolating: tuple[NetworkPolicy, ...] = ()
    allowing: tuple[NetworkPolicy, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.isolating or bool(self.allowing)


@dataclass(frozen=True, slots=True)
class Verdict:
    flow: Flow
    egress: Side
    ingress: Side

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and self.ingress.allowed

    @property
    def denied_sides(self) -> tuple[Side, ...]:
        return tuple(side for side in (self.egress, self.ingress) if not side.allowed)


def side(policies: Iterable[NetworkPolicy], flow: Flow, direction: Direction) -> Side:
    pod = flow.dest if direction == "ingress" else flow.src
    if not isinstance(pod, Pod):
        return Side(direction, None)
    # Those selecting every pod (the namespace's default deny) first, then by name: how people read them.
    isolating = tuple(
        sorted(
            (p for p in policies if p.selects(pod, direction)), key=lambda p: (not p.pods.everything, p.name)
        )
    )
    allowing = tuple(p for p in isolating if p.allows(flow, direction))
    return Side(direction, pod, isolating, allowing)


def evaluate(policies: Sequence[NetworkPolicy], flow: Flow) -> Verdict:
    return Verdict(flow, side(policies, flow, "egress"), side(policies, flow, "ingress"))


def explain_side(item: Side, flow: Flow) -> str:
    """One sentence for a denied side: who isolates the pod, and that none of them lets the peer in."""
    assert item.pod is not None
    names = " and ".join(f"`{p.name}`" for p in item.isolating)
    peer = flow.src if item.direction == "ingress" else flow.dest
    peer_words = _pod_words(peer) if isinstance(peer, Pod) else peer.label
    port = f" on {flow.port}/{flow.protocol}" if flow.port is not None else f" over {flow.protocol}"
    count = len(item.isolating)
    allow = "it does not allow" if count == 1 else "neither allows" if count == 2 else "none of them allows"
    where = "ingress to" if item.direction == "ingress" else "egress from"
    return f"{where} {item.pod.label} is isolated by {names}; {allow} {peer_words}{port}"


def policy_reasons(item: Side) -> list[str]:
    """Per isolating policy: what it selects and what its rules allow."""
    assert item.pod is not None
    return [
        f"`{p.name}` selects {item.pod.name} ({p.pods.describe()}) for {item.direction}; "
        f"it {p.describe_rules(item.direction)}"
        for p in item.isolating
    ]


def _pod_words(pod: Pod) -> str:
    labels = stable_labels(pod.labels)
    who = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or f"pod {pod.name}"
    return f"{who} from namespace {pod.namespace}"


# --- proposals -------------------------------------------------------------------------------------


def stable_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k not in VOLATILE_LABELS}


@dataclass(frozen=True, slots=True)
class Proposal:
    policies: tuple[NetworkPolicy, ...]
    notes: tuple[str, ...] = ()


def proposal_digest(policies: Sequence[NetworkPolicy]) -> str:
    """What an Apply card was shown, to compare with what Apply would create (annotations aside:
    who approves is only known at the click)."""
    shown = [
        {**p.manifest(), "metadata": {"name": p.name, "namespace": p.namespace, "labels": dict(p.labels)}}
        for p in policies
    ]
    return hashlib.sha256(repr(shown).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class NoProposal:
    reason: str


def policy_name(flow: Flow, direction: Direction) -> str:
    """A DNS-1123 name saying what the policy allows, at most 63 characters, unique per flow."""
    raw = f"netlog-allow-{flow.src.label}-to-{flow.dest.label}-{flow.port or 'any'}-{flow.protocol}"
    if direction == "egress":
        raw = (
            f"netlog-allow-egress-{flow.src.label}-to-{flow.dest.label}-{flow.port or 'any'}-{flow.protocol}"
        )
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if len(name) > 63:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[:54].rstrip('-')}-{digest}"
    return name


def _peer_for(endpoint: Endpoint) -> Peer | None:
    if isinstance(endpoint, Address):
        if endpoint.cidr:
            return Peer(ip_block=IPBlock(endpoint.cidr))
        suffix = "/128" if ":" in endpoint.ip else "/32"
        return Peer(ip_block=IPBlock(endpoint.ip + suffix))
    labels = stable_labels(endpoint.labels)
    if not labels:
        return None
    return Peer(
        Selector(tuple(sorted(labels.items()))),
        Selector(((NAMESPACE_NAME_LABEL, endpoint.namespace),)),
    )


def propose(
    policies: Sequence[NetworkPolicy],
    flow: Flow,
    known: Sequence[Endpoint],
    annotations: Mapping[str, str] | None = None,
) -> Proposal | NoProposal:
    """The additive policies (one per denied side) that allow exactly `flow`, verified against
    `known` endpoints; or why none can be proposed."""
    verdict = evaluate(policies, flow)
    if verdict.allowed:
        return NoProposal("the policies read now allow this flow: nothing to add")
    if flow.port is None:
        return NoProposal("the flow has no port (ICMP or a fragment): a policy cannot name it alone")
    for end in (flow.src, flow.dest):
        if isinstance(end, Pod) and end.host_network:
            return NoProposal(
                f"{end.label} runs with hostNetwork: it has its node's address, and policies can "
                "select it neither by labels nor (on Dataplane V2) by ipBlock"
            )
    made = []
    notes: list[str] = []
    for denied in verdict.denied_sides:
        assert denied.pod is not None
        policed, peer = denied.pod, flow.src if denied.direction == "ingress" else flow.dest
        if isinstance(peer, Address) and peer.cidr and not peer.cidr.endswith(("/32", "/128")):
            notes.append(
                f"The peer is named by its network {peer.name} ({peer.cidr}) from the `networks` setting: "
                f"the policy allows all of it, not only {peer.ip}."
            )
        target = stable_labels(policed.labels)
        if not target:
            return NoProposal(
                f"{policed.label} has no labels that survive a rollout: a policy could not select it alone"
            )
        peer_rule = _peer_for(peer)
        if peer_rule is None:
            return NoProposal(f"{peer.label} has no labels that survive a rollout to name it by")
        rule = Rule((peer_rule,), (PolicyPort(flow.protocol, flow.port),))
        made.append(
            NetworkPolicy(
                policy_name(flow, denied.direction),
                policed.namespace,
                Selector(tuple(sorted(target.items()))),
                ingress=(rule,) if denied.direction == "ingress" else (),
                egress=(rule,) if denied.direction == "egress" else (),
                types=frozenset({denied.direction}),
                labels=dict(MANAGED_BY),
                annotations=dict(annotations or {}),
            )
        )
    proposal = tuple(made)
    problem = verify(policies, proposal, flow, known)
    if problem:
        return NoProposal(problem)
    return Proposal(proposal, (*notes, *dns_notes(policies, proposal, flow)))


def verify(
    policies: Sequence[NetworkPolicy],
    proposal: Sequence[NetworkPolicy],
    flow: Flow,
    known: Sequence[Endpoint],
) -> str | None:
    """None when existing + `proposal` allow `flow` and allow nothing else, between the `known`
    endpoints, that was denied before; else what stands in the way."""
    after = [*policies, *proposal]
    if not evaluate(after, flow).allowed:
        return "the proposal would not allow the flow (a bug: please report it)"
    endpoints = list(dict.fromkeys([*known, flow.src, flow.dest]))
    # A policy isolates every pod it selects: one no policy isolated before would lose everything
    # else it may send or receive now, which no pairwise check on this port would show.
    for policy in proposal:
        for direction in sorted(policy.types):
            for pod in (e for e in endpoints if isinstance(e, Pod)):
                if policy.selects(pod, direction) and not any(p.selects(pod, direction) for p in policies):
                    return (
                        f"the smallest policy would also select {pod.label}, which no policy isolates for "
                        f"{direction} now: it would cut off everything else it "
                        f"{'receives' if direction == 'ingress' else 'sends'}"
                    )
    for src in endpoints:
        for dest in endpoints:
            if src == dest or (src, dest) == (flow.src, flow.dest):
                continue
            other = Flow(src, dest, flow.port, flow.protocol)
            if not evaluate(policies, other).allowed and evaluate(after, other).allowed:
                return (
                    f"the smallest policy would also allow {other.label}, which is denied now: "
                    "the labels do not tell these workloads apart"
                )
    return None


KUBE_DNS = Pod(
    "kube-system",
    "kube-dns",
    {"k8s-app": "kube-dns"},
    {NAMESPACE_NAME_LABEL: "kube-system"},
    {"dns": (53, "UDP"), "dns-tcp": (53, "TCP")},
)
METADATA_SERVER = Address("169.254.169.254", "metadata-server", "169.254.169.254/32")


def dns_notes(
    policies: Sequence[NetworkPolicy], proposal: Sequence[NetworkPolicy], flow: Flow
) -> tuple[str, ...]:
    """For a source isolated for egress: whether it can still resolve names (kube-dns, and the
    metadata server that answers DNS on GKE with Cloud DNS)."""
    if not isinstance(flow.src, Pod):
        return ()
    after = [*policies, *proposal]
    if not any(p.selects(flow.src, "egress") for p in after):
        return ()
    missing = [
        f"{dest.label} {port}/{protocol}"
        for dest, port, protocol in (
            (KUBE_DNS, 53, "UDP"),
            (KUBE_DNS, 53, "TCP"),
            (METADATA_SERVER, 53, "UDP"),
        )
        if not evaluate(after, Flow(flow.src, dest, port, protocol)).egress.allowed
    ]
    if not missing:
        return ()
    return (
        f"{flow.src.label} is isolated for egress and may not reach {', '.join(missing)}: if it resolves "
        "names, it also needs an egress rule to kube-dns (namespace kube-system, k8s-app=kube-dns) on 53 "
        "UDP and TCP, and on GKE with Cloud DNS to 169.254.169.254/32 on 53",
    )


# --- from an alert's words and the API's JSON to endpoints -------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkloadRef:
    """`namespace/name` as alerts show a pod's workload."""

    namespace: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class NodeRef:
    name: str

    @property
    def label(self) -> str:
        return f"node/{self.name}"


EndpointRef = WorkloadRef | NodeRef | Address


@dataclass(frozen=True, slots=True)
class FlowRef:
    src: EndpointRef
    dest: EndpointRef
    port: int | None
    protocol: str

    @property
    def label(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.src.label} → {self.dest.label}{port}/{self.protocol.lower()}"


_FLOW = re.compile(
    r"^\s*(?P<src>.+?)\s*(?:→|->)\s*(?P<dest>.+?):(?:(?P<port>[0-9]{1,5})/)?(?P<proto>[A-Za-z]+)"
    r"(?:\s+(?:ingress|egress))?(?:\s+×.*)?\s*$"
)
_NAME = r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?"
PROTOCOLS = ("TCP", "UDP", "SCTP")
FLOW_EXAMPLE = "checkout/web → payments/api:8080/tcp"


def network_cidrs(networks: Mapping[str, str]) -> dict[str, str]:
    """The `networks` setting (CIDR -> name) turned round, for reading names in flows; a name given
    to several CIDRs is left out (which one an alert meant is unknown: its IP is used instead)."""
    by_name: dict[str, list[str]] = {}
    for cidr, name in networks.items():
        by_name.setdefault(name, []).append(cidr)
    return {name: cidrs[0] for name, cidrs in by_name.items() if len(cidrs) == 1}


def parse_flow(text: str, networks: Mapping[str, str] | None = None) -> FlowRef:
    """A flow as an alert shows it (`checkout/web → payments/api:8080/tcp`, `->` works too, the
    alert's trailing direction and count are ignored). `networks` maps the `networks` setting's names to
    their CIDRs, for `metadata-server (169.254.169.254)`-style endpoints."""
    found = _FLOW.match(text.replace("`", ""))
    if not found:
        raise PolicyError(
            f"I could not read a flow in `{text.strip()}`: write it as the alert shows it, "
            f"e.g. `{FLOW_EXAMPLE}`."
        )
    protocol = found["proto"].upper()
    if protocol not in PROTOCOLS and protocol != "ICMP":
        raise PolicyError(f"`{found['proto']}` is not a protocol NetworkPolicies know (TCP, UDP, SCTP).")
    port = int(found["port"]) if found["port"] else None
    if port is not None and not 1 <= port <= 65535:
        raise PolicyError(f"{port} is not a port number (1-65535).")
    return FlowRef(
        _endpoint_ref(found["src"], networks or {}),
        _endpoint_ref(found["dest"], networks or {}),
        port,
        protocol,
    )


def _endpoint_ref(text: str, networks: Mapping[str, str]) -> EndpointRef:
    text = text.strip()
    named = re.fullmatch(r"(.+?)\s*\(([0-9a-fA-F.:]+)\)", text)
    if named:
        name, ip = named[1], named[2]
        return Address(_ip(ip, text), name, networks.get(name))
    if "/" in text:
        first, _, second = text.partition("/")
        if first == "node":
            return NodeRef(second)
        if re.fullmatch(_NAME, first) and re.fullmatch(_NAME, second):
            return WorkloadRef(first, second)
    if text in networks:
        network = networks[text]
        return Address(network.split("/")[0], text, network)
    return Address(_ip(text, text), None, None)


def _ip(value: str, text: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise PolicyError(
            f"`{text}` is neither `namespace/workload`, `node/NAME` nor an IP address."
        ) from None


def named_ports(containers: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, str]]:
    """A pod spec's named container ports: name -> (number, protocol)."""
    ports: dict[str, tuple[int, str]] = {}
    for container in containers:
        for port in container.get("ports") or ():
            if port.get("name") and port.get("containerPort"):
                ports[str(port["name"])] = (int(port["containerPort"]), str(port.get("protocol") or "TCP"))
    return ports


def pod_of(manifest: Mapping[str, Any], name: str, namespace_labels: Mapping[str, str]) -> Pod:
    """A Pod (or a workload's pod template) as the evaluator sees it, named `name`."""
    metadata = manifest.get("metadata") or {}
    spec = manifest.get("spec") or {}
    return Pod(
        str(metadata.get("namespace", "")),
        name,
        dict(metadata.get("labels") or {}),
        dict(namespace_labels),
        named_ports(spec.get("containers") or ()),
        bool(spec.get("hostNetwork")),
    )


def template_pod(workload: Mapping[str, Any], name: str, namespace_labels: Mapping[str, str]) -> Pod:
    template = (workload.get("spec") or {}).get("template") or {}
    namespace = str((workload.get("metadata") or {}).get("namespace", ""))
    meta = dict(template.get("metadata") or {}) | {"namespace": namespace}
    return pod_of({"metadata": meta, "spec": template.get("spec") or {}}, name, namespace_labels)


@dataclass(frozen=True, slots=True)
class Explanation:
    cluster: str
    flow: Flow
    verdict: Verdict
    proposal: Proposal | NoProposal
    limits: tuple[str, ...] = LIMITS
    notes: tuple[str, ...] = field(default=())
    #: The flow as it was asked about: what a Propose button or an Apply card carries on, so the
    #: flow is read again the same way (an address name and its IP included).
    asked: str = ""

    @property
    def sentences(self) -> list[str]:
        """Which side denied, and why; or that the policies read now allow the flow."""
        if self.verdict.allowed:
            allowing = [p for item in (self.verdict.egress, self.verdict.ingress) for p in item.allowing]
            by = f" (allowed by {', '.join(f'`{p.name}`' for p in allowing)})" if allowing else ""
            return [
                f"The NetworkPolicies on {self.cluster} allow {self.flow.label} now{by}: they changed "
                "since the deny, or something this evaluator cannot see denied it."
            ]
        return [explain_side(side, self.flow) for side in self.verdict.denied_sides]

    @property
    def reasons(self) -> list[str]:
        return [reason for side in self.verdict.denied_sides for reason in policy_reasons(side)]

    @property
    def other_side(self) -> str | None:
        """A word on the side that allowed the flow, when one denied."""
        for item in (self.verdict.egress, self.verdict.ingress):
            if item.allowed and self.verdict.denied_sides and item.pod is not None:
                where = "egress from" if item.direction == "egress" else "ingress to"
                if not item.isolating:
                    return f"{where} {item.pod.label} is open: no policy selects it for {item.direction}."
                names = ", ".join(f"`{p.name}`" for p in item.allowing)
                return f"{where} {item.pod.label} is allowed by {names}."
        return None
