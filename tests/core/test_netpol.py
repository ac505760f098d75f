"""The NetworkPolicy evaluator, table-driven and property-based: default deny, allow-all, selectors
with expressions, cross-namespace peers, ipBlock with except, named ports, endPort, egress isolation,
policies unioning; and the proposal, which always allows the flow and nothing else denied before."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from bot.core.netpol import (
    MANAGED_BY,
    Address,
    Flow,
    NetworkPolicy,
    NoProposal,
    Pod,
    PolicyError,
    Proposal,
    evaluate,
    explain_side,
    policy_name,
    policy_reasons,
    propose,
    stable_labels,
)


def ns_labels(name: str, **extra: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name, **extra}


WEB = Pod(
    "checkout", "web", {"app": "web", "pod-template-hash": "6d9f8b7c5d"}, ns_labels("checkout", team="shop")
)
GATEWAY = Pod("edge", "gateway", {"app": "gateway"}, ns_labels("edge"))
API = Pod(
    "payments",
    "api",
    {"app": "api", "tier": "backend", "pod-template-hash": "7b78d7c957"},
    ns_labels("payments"),
    {"http": (8080, "TCP"), "metrics": (9090, "TCP")},
)
WORKER = Pod("payments", "worker", {"app": "worker", "tier": "backend"}, ns_labels("payments"))
OUTSIDE = Address("203.0.113.7")


def policy(name: str, namespace: str = "payments", **spec: Any) -> NetworkPolicy:
    return NetworkPolicy.parse({"metadata": {"name": name, "namespace": namespace}, "spec": spec})


DEFAULT_DENY = policy("default-deny", podSelector={}, policyTypes=["Ingress"])
API_FROM_GATEWAY = policy(
    "api-from-gateway",
    podSelector={"matchLabels": {"app": "api"}},
    ingress=[
        {
            "from": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge"}},
                    "podSelector": {"matchLabels": {"app": "gateway"}},
                }
            ],
            "ports": [{"port": 8080}],
        }
    ],
)


def allowed(
    policies: list[NetworkPolicy], src: Pod | Address, dest: Pod | Address, port: int, proto: str = "TCP"
) -> bool:
    return evaluate(policies, Flow(src, dest, port, proto)).allowed


@pytest.mark.parametrize(
    ("policies", "src", "dest", "port", "expected"),
    [
        ([], WEB, API, 8080, True),  # nothing selects the pods: not isolated
        ([DEFAULT_DENY], WEB, API, 8080, False),
        ([DEFAULT_DENY], GATEWAY, API, 8080, False),
        ([DEFAULT_DENY, API_FROM_GATEWAY], GATEWAY, API, 8080, True),
        ([DEFAULT_DENY, API_FROM_GATEWAY], GATEWAY, API, 9090, False),
        ([DEFAULT_DENY, API_FROM_GATEWAY], WEB, API, 8080, False),
        ([DEFAULT_DENY, API_FROM_GATEWAY], GATEWAY, WORKER, 8080, False),  # isolated by default-deny only
        ([policy("allow-all", podSelector={}, ingress=[{}])], WEB, API, 1234, True),
        ([DEFAULT_DENY, policy("allow-all", podSelector={}, ingress=[{}])], OUTSIDE, API, 1, True),
        # A podSelector-only peer means the policy's own namespace.
        (
            [policy("same-ns", podSelector={}, ingress=[{"from": [{"podSelector": {}}]}])],
            WORKER,
            API,
            80,
            True,
        ),
        ([policy("same-ns", podSelector={}, ingress=[{"from": [{"podSelector": {}}]}])], WEB, API, 80, False),
        # A namespaceSelector-only peer: every pod of those namespaces.
        (
            [
                policy(
                    "shop",
                    podSelector={},
                    ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "shop"}}}]}],
                )
            ],
            WEB,
            API,
            80,
            True,
        ),
        # An empty namespaceSelector: any namespace.
        (
            [policy("any-ns", podSelector={}, ingress=[{"from": [{"namespaceSelector": {}}]}])],
            GATEWAY,
            API,
            80,
            True,
        ),
        (
            [policy("any-ns", podSelector={}, ingress=[{"from": [{"namespaceSelector": {}}]}])],
            OUTSIDE,
            API,
            80,
            False,
        ),
    ],
)
def test_ingress_verdicts(
    policies: list[NetworkPolicy], src: Pod | Address, dest: Pod, port: int, expected: bool
) -> None:
    assert allowed(policies, src, dest, port) is expected


@pytest.mark.parametrize(
    ("expressions", "expected"),
    [
        ([{"key": "tier", "operator": "In", "values": ["backend", "db"]}], True),
        ([{"key": "tier", "operator": "NotIn", "values": ["backend"]}], False),
        ([{"key": "tier", "operator": "Exists"}], True),
        ([{"key": "canary", "operator": "DoesNotExist"}], True),
        ([{"key": "canary", "operator": "Exists"}], False),
        (
            [
                {"key": "tier", "operator": "In", "values": ["backend"]},
                {"key": "app", "operator": "NotIn", "values": ["api"]},
            ],
            False,
        ),
    ],
)
def test_selectors_with_expressions(expressions: list[dict[str, Any]], expected: bool) -> None:
    isolating = policy("expr", podSelector={"matchExpressions": expressions}, policyTypes=["Ingress"])
    assert (not allowed([isolating], WEB, API, 8080)) is expected


@pytest.mark.parametrize(
    ("block", "ip", "expected"),
    [
        ({"cidr": "203.0.113.0/24"}, "203.0.113.7", True),
        ({"cidr": "203.0.113.0/24", "except": ["203.0.113.0/29"]}, "203.0.113.7", False),
        ({"cidr": "203.0.113.0/24", "except": ["203.0.113.0/29"]}, "203.0.113.9", True),
        ({"cidr": "0.0.0.0/0"}, "2001:db8::1", False),
        ({"cidr": "2001:db8::/32"}, "2001:db8::1", True),
    ],
)
def test_ip_blocks_with_except(block: dict[str, Any], ip: str, expected: bool) -> None:
    rule = policy("ext", podSelector={}, ingress=[{"from": [{"ipBlock": block}]}])
    assert allowed([rule], Address(ip), API, 443) is expected


def test_an_ip_block_never_matches_a_pod() -> None:
    """Dataplane V2 (Cilium) matches ipBlock against addresses outside the cluster only."""
    rule = policy("ext", podSelector={}, ingress=[{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}])
    assert not allowed([rule], WEB, API, 443)


@pytest.mark.parametrize(
    ("ports", "port", "proto", "expected"),
    [
        ([{"port": "http"}], 8080, "TCP", True),  # the receiving pod's named port
        ([{"port": "http"}], 9090, "TCP", False),
        ([{"port": "http", "protocol": "UDP"}], 8080, "UDP", False),  # http is TCP on api
        ([{"port": "nosuch"}], 8080, "TCP", False),
        ([{"port": 8000, "endPort": 8100}], 8080, "TCP", True),
        ([{"port": 8000, "endPort": 8100}], 8101, "TCP", False),
        ([{"protocol": "UDP"}], 53, "UDP", True),  # no port: every port of that protocol
        ([{"protocol": "UDP"}], 53, "TCP", False),
        ([{"port": 8080, "protocol": "SCTP"}], 8080, "SCTP", True),
        ([{"port": 8080}], 8080, "SCTP", False),  # the protocol defaults to TCP
    ],
)
def test_ports(ports: list[dict[str, Any]], port: int, proto: str, expected: bool) -> None:
    rule = policy("ports", podSelector={}, ingress=[{"ports": ports}])
    assert allowed([rule], WEB, API, port, proto) is expected


def test_egress_isolation_and_both_directions() -> None:
    no_egress = policy("no-egress", "checkout", podSelector={}, policyTypes=["Egress"])
    assert not allowed([no_egress], WEB, API, 8080)
    to_api = policy(
        "to-api",
        "checkout",
        podSelector={"matchLabels": {"app": "web"}},
        egress=[
            {
                "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "api"}}}],
                "ports": [{"port": "http"}],
            }
        ],
    )
    # policyTypes absent: Ingress always, plus Egress because it has egress rules.
    assert to_api.types == frozenset({"ingress", "egress"})
    assert allowed([no_egress, to_api], WEB, API, 8080)  # the named port resolves at the destination
    assert not allowed([no_egress, to_api], WEB, API, 9090)
    # Egress allowed at the source is not enough: the destination's ingress still decides.
    verdict = evaluate([no_egress, to_api, DEFAULT_DENY], Flow(WEB, API, 8080))
    assert verdict.egress.allowed
    assert not verdict.ingress.allowed
    assert [s.direction for s in verdict.denied_sides] == ["ingress"]


def test_policies_union() -> None:
    one = policy(
        "one",
        podSelector={},
        ingress=[{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "gateway"}}}]}],
    )
    two = policy(
        "two", podSelector={}, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "shop"}}}]}]
    )
    assert not allowed([one], WEB, API, 80)
    assert not allowed([two], GATEWAY, API, 80)
    assert allowed([one, two], WEB, API, 80)
    assert allowed([one, two], GATEWAY, API, 80)
    assert evaluate([one, two], Flow(WEB, API, 80)).ingress.allowing == (two,)


def test_policy_types_given_explicitly_override_the_default() -> None:
    both = policy("both", podSelector={}, policyTypes=["Ingress", "Egress"])
    assert both.types == frozenset({"ingress", "egress"})
    assert not allowed([both], API, WORKER, 80)
    with pytest.raises(PolicyError, match="neither Ingress nor Egress"):
        policy("bad", podSelector={}, policyTypes=["Sideways"])


def test_the_explanation_names_every_isolating_policy() -> None:
    flow = Flow(WEB, API, 8080)
    [denied] = evaluate([DEFAULT_DENY, API_FROM_GATEWAY], flow).denied_sides
    assert explain_side(denied, flow) == (
        "ingress to payments/api is isolated by `default-deny` and `api-from-gateway`; neither allows "
        "app=web from namespace checkout on 8080/TCP"
    )
    assert policy_reasons(denied) == [
        "`default-deny` selects api (any) for ingress; it allows no ingress at all",
        "`api-from-gateway` selects api (app=api) for ingress; it allows only from app=gateway from "
        "namespace edge on 8080/TCP",
    ]


def test_a_manifest_round_trips() -> None:
    assert NetworkPolicy.parse(API_FROM_GATEWAY.manifest()) == API_FROM_GATEWAY


# --- proposals --------------------------------------------------------------------------------------


def test_the_proposal_for_the_done_when_flow() -> None:
    flow = Flow(WEB, API, 8080)
    known = [WEB, API, WORKER, GATEWAY]
    result = propose([DEFAULT_DENY, API_FROM_GATEWAY], flow, known, {"netlog-bot/approved-by": "U1"})
    assert isinstance(result, Proposal)
    [made] = result.policies
    assert made.manifest() == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "netlog-allow-checkout-web-to-payments-api-8080-tcp",
            "namespace": "payments",
            "labels": MANAGED_BY,
            "annotations": {"netlog-bot/approved-by": "U1"},
        },
        "spec": {
            "podSelector": {"matchLabels": {"app": "api", "tier": "backend"}},  # no pod-template-hash
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "checkout"}},
                            "podSelector": {"matchLabels": {"app": "web"}},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": 8080}],
                }
            ],
        },
    }
    after = [DEFAULT_DENY, API_FROM_GATEWAY, made]
    assert allowed(after, WEB, API, 8080)
    assert not allowed(after, WEB, API, 9090)
    assert not allowed(after, WEB, WORKER, 8080)
    assert result.notes == ()


def test_an_egress_deny_gets_an_egress_policy_and_a_dns_note() -> None:
    no_egress = policy("no-egress", "checkout", podSelector={}, policyTypes=["Egress"])
    result = propose([no_egress], Flow(WEB, API, 8080), [WEB, API])
    assert isinstance(result, Proposal)
    [made] = result.policies
    assert (made.namespace, made.types) == ("checkout", frozenset({"egress"}))
    assert made.name.startswith("netlog-allow-egress-")
    [note] = result.notes
    assert "may not reach kube-system/kube-dns 53/UDP" in note
    assert "169.254.169.254/32 on 53" in note


def test_both_sides_denied_give_two_policies() -> None:
    no_egress = policy("no-egress", "checkout", podSelector={}, policyTypes=["Egress"])
    result = propose([no_egress, DEFAULT_DENY], Flow(WEB, API, 8080), [WEB, API])
    assert isinstance(result, Proposal)
    assert sorted(p.namespace for p in result.policies) == ["checkout", "payments"]
    assert allowed([no_egress, DEFAULT_DENY, *result.policies], WEB, API, 8080)


def test_a_bare_ip_is_named_by_its_network_or_as_a_slash_32() -> None:
    egress_off = policy("egress-off", "checkout", podSelector={}, policyTypes=["Egress"])
    result = propose([egress_off], Flow(WEB, OUTSIDE, 443), [WEB])
    assert isinstance(result, Proposal)
    assert result.policies[0].egress[0].peers[0].ip_block is not None
    assert result.policies[0].egress[0].peers[0].ip_block.cidr == "203.0.113.7/32"
    named = Address("10.128.0.9", "nodes", "10.128.0.0/20")
    result = propose([egress_off], Flow(WEB, named, 22), [WEB])
    assert isinstance(result, Proposal)
    assert result.policies[0].manifest()["spec"]["egress"][0]["to"] == [
        {"ipBlock": {"cidr": "10.128.0.0/20"}}
    ]


def test_no_proposal_when_it_would_be_broader_than_the_flow() -> None:
    twin = Pod("checkout", "web-canary", {"app": "web"}, ns_labels("checkout"))  # the same stable labels
    result = propose([DEFAULT_DENY], Flow(WEB, API, 8080), [WEB, API, twin])
    assert isinstance(result, NoProposal)
    assert "would also allow checkout/web-canary → payments/api:8080/tcp" in result.reason


def test_no_proposal_for_a_pod_without_stable_labels() -> None:
    bare = Pod("payments", "api", {"pod-template-hash": "abc"}, ns_labels("payments"))
    result = propose([DEFAULT_DENY], Flow(WEB, bare, 8080), [WEB, bare])
    assert isinstance(result, NoProposal)
    assert "no labels that survive a rollout" in result.reason


def test_no_proposal_for_an_allowed_flow() -> None:
    assert isinstance(propose([], Flow(WEB, API, 8080), [WEB, API]), NoProposal)


def test_policy_names_are_dns_labels() -> None:
    long = Pod("a-very-long-namespace-name-for-testing", "an-equally-long-workload-name-here", {"app": "x"})
    name = policy_name(Flow(long, long, 65535, "SCTP"), "egress")
    assert len(name) <= 63
    assert name == name.lower()
    assert name.replace("-", "").isalnum()


# --- properties -------------------------------------------------------------------------------------

LABEL_KEYS = ["app", "tier", "team"]
LABEL_VALUES = ["a", "b", "c"]
NAMESPACES = ["n1", "n2"]

labels = st.dictionaries(st.sampled_from(LABEL_KEYS), st.sampled_from(LABEL_VALUES), max_size=3)
selectors = st.one_of(
    st.just({}),
    labels.map(lambda m: {"matchLabels": m}),
    st.builds(
        lambda k, op, vs: {
            "matchExpressions": [
                {"key": k, "operator": op, **({"values": vs} if op in ("In", "NotIn") else {})}
            ]
        },
        st.sampled_from(LABEL_KEYS),
        st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]),
        st.lists(st.sampled_from(LABEL_VALUES), min_size=1, max_size=2),
    ),
)
peers = st.one_of(
    st.builds(lambda s: {"podSelector": s}, selectors),
    st.builds(lambda s: {"namespaceSelector": s}, selectors),
    st.builds(lambda a, b: {"podSelector": a, "namespaceSelector": b}, selectors, selectors),
    st.just({"ipBlock": {"cidr": "198.51.100.0/24"}}),
)
rules = st.builds(
    lambda ps, ports: {**({"from": ps} if ps else {}), **({"ports": ports} if ports else {})},
    st.lists(peers, max_size=2),
    st.lists(
        st.sampled_from([{"port": 80}, {"port": 443}, {"port": 80, "endPort": 90}, {"protocol": "UDP"}]),
        max_size=2,
    ),
)
policies = st.builds(
    lambda i, ns, sel, ingress, types: policy(
        f"p{i}", ns, podSelector=sel, ingress=ingress, **({"policyTypes": types} if types else {})
    ),
    st.integers(0, 10_000),
    st.sampled_from(NAMESPACES),
    selectors,
    st.lists(rules, max_size=2),
    st.sampled_from([None, ["Ingress"], ["Ingress", "Egress"], ["Egress"]]),
)
pods = st.builds(
    lambda i, ns, ls: Pod(
        ns, f"w{i}", {**ls, "pod-template-hash": f"h{i}"}, {"kubernetes.io/metadata.name": ns}
    ),
    st.integers(0, 50),
    st.sampled_from(NAMESPACES),
    labels,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(policies, max_size=4),
    st.lists(pods, min_size=2, max_size=5, unique_by=lambda p: p.name),
    st.sampled_from([80, 443, 85]),
)
def test_a_proposal_allows_the_flow_and_nothing_else_denied_before(
    existing: list[NetworkPolicy], known: list[Pod], port: int
) -> None:
    flow = Flow(known[0], known[1], port)
    result = propose(existing, flow, known)
    event("proposed" if isinstance(result, Proposal) else "no proposal")
    if isinstance(result, NoProposal):
        return
    after = [*existing, *result.policies]
    assert evaluate(after, flow).allowed
    for src in known:
        for dest in known:
            if src is dest or (src, dest) == (flow.src, flow.dest):
                continue
            for other_port, proto in ((port, "TCP"), (port + 1, "TCP"), (port, "UDP")):
                other = Flow(src, dest, other_port, proto)
                if evaluate(after, other).allowed:
                    assert evaluate(existing, other).allowed, f"{other.label} was opened too"
    # Only the flow's own port and protocol are opened.
    for other_port, proto in ((port + 1, "TCP"), (port, "UDP")):
        other = Flow(flow.src, flow.dest, other_port, proto)
        assert evaluate(after, other).allowed == evaluate(existing, other).allowed


@settings(max_examples=300, deadline=None)
@given(st.lists(policies, max_size=4), pods, pods, st.sampled_from([80, 443]))
def test_a_pod_no_policy_selects_is_not_isolated(
    existing: list[NetworkPolicy], src: Pod, dest: Pod, port: int
) -> None:
    verdict = evaluate(existing, Flow(src, dest, port))
    if not any(p.selects(dest, "ingress") for p in existing):
        assert verdict.ingress.allowed
    if not any(p.selects(src, "egress") for p in existing):
        assert verdict.egress.allowed


@settings(max_examples=200, deadline=None)
@given(st.lists(policies, max_size=4), pods, pods, st.sampled_from([80, 443]))
def test_policies_union_monotonically_for_an_isolated_pod(
    existing: list[NetworkPolicy], src: Pod, dest: Pod, port: int
) -> None:
    """Once a pod is isolated, adding a policy that selects it can only allow more."""
    flow = Flow(src, dest, port)
    isolated = [p for p in existing if p.selects(dest, "ingress")]
    if not isolated:
        return
    for extra in existing:
        assert evaluate([*isolated, extra], flow).ingress.allowed >= evaluate(isolated, flow).ingress.allowed


def test_stable_labels_drop_revision_labels() -> None:
    assert stable_labels({"app": "x", "pod-template-hash": "1", "controller-revision-hash": "2"}) == {
        "app": "x"
    }


def test_no_proposal_that_would_isolate_a_pod_nothing_isolates_now() -> None:
    """A canary sharing the labels, left open by `track DoesNotExist`, would lose all its traffic."""
    stable_only = policy(
        "stable-only",
        podSelector={"matchExpressions": [{"key": "track", "operator": "DoesNotExist"}]},
        policyTypes=["Ingress"],
    )
    canary = Pod(
        "payments", "api-canary", {"app": "api", "tier": "backend", "track": "canary"}, ns_labels("payments")
    )
    result = propose([stable_only], Flow(WEB, API, 8080), [WEB, API, canary])
    assert isinstance(result, NoProposal)
    assert "would also select payments/api-canary, which no policy isolates for ingress now" in result.reason


def test_icmp_is_allowed_only_by_rules_without_ports() -> None:
    with_ports = policy("tcp-only", podSelector={}, ingress=[{"ports": [{"protocol": "TCP"}]}])
    any_port = policy("anything", podSelector={}, ingress=[{}])
    assert not allowed([with_ports], WEB, API, 0, "ICMP")
    assert evaluate([with_ports], Flow(WEB, API, None, "ICMP")).ingress.allowed is False
    assert evaluate([any_port], Flow(WEB, API, None, "ICMP")).ingress.allowed is True
    assert Flow(WEB, API, None, "ICMP").label == "checkout/web → payments/api/icmp"


def test_no_proposal_for_host_network_pods() -> None:
    host = Pod("checkout", "agent", {"app": "agent"}, ns_labels("checkout"), host_network=True)
    result = propose([DEFAULT_DENY], Flow(host, API, 8080), [host, API])
    assert isinstance(result, NoProposal)
    assert "hostNetwork" in result.reason


def test_a_named_network_proposal_says_it_opens_the_whole_network() -> None:
    egress_off = policy("egress-off", "checkout", podSelector={}, policyTypes=["Egress"])
    corp = Address("10.1.2.3", "corp", "10.0.0.0/8")
    assert corp.label == "corp (10.1.2.3)"
    result = propose([egress_off], Flow(WEB, corp, 443), [WEB])
    assert isinstance(result, Proposal)
    assert "allows all of it, not only 10.1.2.3" in result.notes[0]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {
                "podSelector": {},
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["nope"]}}]}],
            },
            "not a CIDR",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "endPort": "90"}]}]},
            "neither a number nor a name",
        ),
        ({"podSelector": {}, "ingress": ["from-everyone"]}, "a rule is not a map"),
        ({"podSelector": {}, "ingress": [{"from": ["x"]}]}, "entry is not a map"),
    ],
)
def test_manifests_the_api_server_would_refuse_are_policy_errors(spec: dict[str, Any], expected: str) -> None:
    with pytest.raises(PolicyError, match=expected):
        policy("odd", **spec)


def test_an_empty_egress_list_is_no_egress_rules() -> None:
    assert policy("empty", podSelector={}, egress=[]).types == frozenset({"ingress"})
    null_selector = policy(
        "null", podSelector={}, ingress=[{"from": [{"namespaceSelector": None, "podSelector": {}}]}]
    )
    assert not allowed([null_selector], WEB, API, 80)  # null is absent: this namespace only
    assert allowed([null_selector], WORKER, API, 80)
