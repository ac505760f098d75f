"""`/netlog explain`, `propose`, `proposals` and `withdraw` in-process: the real kubernetes client reads
the fake API server's NetworkPolicies, pods, namespaces and workloads; Apply creates the proposal
after the usual confirmation and audits it; refusals name the missing verb."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.adapters.store import Store
from bot.core import netpol
from bot.render import ids
from bot.render.replies import Reply
from tests.fakes.kube import FakeKube
from tests.policy_cluster import DENIED_FLOW, EXPLANATION, payments_cluster
from tests.services.support import OPERATOR, STRANGER, Bench, audit_rows, change_id, text_of

PROPOSED = "netlog-allow-checkout-web-to-payments-api-8080-tcp"


@pytest.fixture
def cluster(kube: FakeKube) -> FakeKube:
    return payments_cluster(kube)


def yaml_of(reply: Reply) -> list[dict[str, Any]]:
    text = text_of(reply)
    block = text.split("```\n", 1)[1].split("```", 1)[0]
    unescaped = block.replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")
    return [doc for doc in yaml.safe_load_all(unescaped) if doc]


def has_button(reply: Reply, action: str) -> bool:
    return any(
        element.get("action_id") == action
        for block in reply.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    )


def test_explain_names_the_isolating_policies(bench: Bench, cluster: FakeKube) -> None:
    reply = bench.netlog.handle(STRANGER, f"explain {DENIED_FLOW}")
    text = text_of(reply)
    assert EXPLANATION in text
    reason = "`api-from-gateway` selects api (app=api) for ingress; it allows only from app=gateway"
    assert f"{reason} from namespace edge on http/TCP" in text
    assert "egress from checkout/web is open: no policy selects it for egress." in text
    assert has_button(reply, ids.PROPOSE)
    context = " ".join(e["text"] for b in reply.blocks if b["type"] == "context" for e in b["elements"])
    assert "FQDN" in context
    assert "hostNetwork" in context


def test_propose_gives_yaml_a_schema_validator_accepts(bench: Bench, cluster: FakeKube) -> None:
    reply = bench.netlog.handle(STRANGER, f"propose {DENIED_FLOW}")
    [manifest] = yaml_of(reply)
    kubernetes_validate.validate(manifest, "1.33", strict=True)
    assert manifest["metadata"]["name"] == PROPOSED
    assert manifest["spec"]["podSelector"] == {"matchLabels": {"app": "api", "tier": "backend"}}
    assert "`kubectl apply -f -` with prod-eu's context" in text_of(reply)
    assert not has_button(reply, ids.APPLY)  # not an operator
    assert "Only operators can apply" in str(reply.blocks)
    assert len(cluster.network_policies("payments")) == 2  # nothing created


def test_an_operator_applies_after_confirmation_and_it_is_audited(
    bench: Bench, cluster: FakeKube, store: Store
) -> None:
    card = bench.netlog.handle(OPERATOR, f"propose {DENIED_FLOW}")
    assert f"Create payments/{PROPOSED} on prod-eu?" in text_of(card)
    assert len(cluster.network_policies("payments")) == 2  # nothing before Apply
    done = bench.apply(OPERATOR, change_id(card))
    assert f"Created NetworkPolicy payments/{PROPOSED} on prod-eu" in text_of(done)
    created = next(p for p in cluster.network_policies("payments") if p["metadata"]["name"] == PROPOSED)
    assert created["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "netlog-bot"}
    assert created["metadata"]["annotations"] == {
        "netlog-bot/approved-by": OPERATOR,
        "netlog-bot/flow": DENIED_FLOW,
    }
    # The cluster now allows exactly that flow.
    policies = [netpol.NetworkPolicy.parse(p) for p in cluster.network_policies()]
    now = text_of(bench.netlog.handle(OPERATOR, f"explain {DENIED_FLOW}"))
    assert f"allow {DENIED_FLOW} now (allowed by `{PROPOSED}`)" in now
    web = netpol.Pod("checkout", "web", {"app": "web"}, {"kubernetes.io/metadata.name": "checkout"})
    api = netpol.Pod(
        "payments",
        "api",
        {"app": "api", "tier": "backend"},
        {"kubernetes.io/metadata.name": "payments"},
        {"http": (8080, "TCP")},
    )
    worker = netpol.Pod(
        "payments",
        "worker",
        {"app": "worker", "tier": "backend"},
        {"kubernetes.io/metadata.name": "payments"},
    )
    assert netpol.evaluate(policies, netpol.Flow(web, api, 8080)).allowed
    assert not netpol.evaluate(policies, netpol.Flow(web, api, 9090)).allowed
    assert not netpol.evaluate(policies, netpol.Flow(web, worker, 8080)).allowed
    [row] = [r for r in audit_rows(store) if r["action"] == "apply-proposal"]
    assert (row["user_id"], row["cluster"], row["result"]) == (OPERATOR, "prod-eu", "applied")
    again = bench.apply(OPERATOR, change_id(card))
    assert "already applied" in text_of(again)


def test_without_the_opt_in_role_apply_is_not_offered(bench: Bench, cluster: FakeKube) -> None:
    cluster.grants = {("list", "networking.k8s.io", "networkpolicies")}  # read-only, as the base role
    reply = bench.netlog.handle(OPERATOR, f"propose {DENIED_FLOW}")
    assert not has_button(reply, ids.APPLY)
    assert "the bot may not create or delete NetworkPolicies on prod-eu" in str(reply.blocks)
    assert "rbac-apply.yaml" in str(reply.blocks)


def test_a_403_on_list_names_the_missing_verb(bench: Bench, cluster: FakeKube) -> None:
    cluster.fail_next(403, path_contains="networkpolicies")
    text = text_of(bench.netlog.handle(STRANGER, f"explain {DENIED_FLOW}"))
    assert "The bot may not `list` `networkpolicies` (networking.k8s.io) on prod-eu" in text


def test_a_403_on_create_names_the_missing_verb_and_the_opt_in_role(
    bench: Bench, cluster: FakeKube, store: Store
) -> None:
    card = bench.netlog.handle(OPERATOR, f"propose {DENIED_FLOW}")
    cluster.fail_next(403, methods={"POST"}, path_contains="networkpolicies")
    text = text_of(bench.apply(OPERATOR, change_id(card)))
    assert "The bot may not `create` `networkpolicies` (networking.k8s.io) on prod-eu" in text
    assert "rbac-apply.yaml" in text
    [row] = [r for r in audit_rows(store) if r["action"] == "apply-proposal"]
    assert row["result"] == "failed"


def test_labels_come_from_the_workload_when_no_pod_runs(bench: Bench, kube: FakeKube) -> None:
    payments_cluster(kube)
    kube.add_workload("Deployment", "checkout", "batch", {"app": "batch"})
    text = text_of(bench.netlog.handle(STRANGER, "explain checkout/batch → payments/api:8080/tcp"))
    assert "neither allows app=batch from namespace checkout" in text
    missing = text_of(bench.netlog.handle(STRANGER, "explain checkout/gone → payments/api:8080/tcp"))
    assert "No pod of `checkout/gone` runs on prod-eu" in missing


def test_proposals_lists_and_withdraw_deletes_only_the_bots(
    bench: Bench, cluster: FakeKube, store: Store
) -> None:
    bench.apply(OPERATOR, change_id(bench.netlog.handle(OPERATOR, f"propose {DENIED_FLOW}")))
    listing = text_of(bench.netlog.handle(STRANGER, "proposals"))
    assert f"`payments/{PROPOSED}`: `{DENIED_FLOW}`, approved by <@{OPERATOR}>" in listing.replace(
        "&gt;", ">"
    )
    refused = text_of(bench.netlog.handle(STRANGER, f"withdraw payments/{PROPOSED}"))
    assert "operators" in refused
    card = bench.netlog.handle(OPERATOR, f"withdraw payments/{PROPOSED}")
    assert f"Delete NetworkPolicy payments/{PROPOSED} on prod-eu?" in text_of(card)
    assert f"Deleted NetworkPolicy payments/{PROPOSED}" in text_of(bench.apply(OPERATOR, change_id(card)))
    assert [p["metadata"]["name"] for p in cluster.network_policies("payments")] == [
        "api-from-gateway",
        "default-deny",
    ]
    withdrawals = [(r["user_id"], r["result"]) for r in audit_rows(store) if r["action"] == "withdraw"]
    assert withdrawals == [(STRANGER, "refused"), (OPERATOR, "applied")]
    theirs = bench.netlog.handle(OPERATOR, "withdraw payments/default-deny")
    text = text_of(bench.apply(OPERATOR, change_id(theirs)))
    assert "is not a policy netlog-bot created on prod-eu" in text
    assert len(cluster.network_policies("payments")) == 2


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("explain", "Which flow?"),
        ("explain web to api", "I could not read a flow"),
        ("explain checkout/web → payments/api:8080/gre", "`gre` is not a protocol"),
        (
            "explain node/gke-1 → payments/api:8080/tcp",
            "policies see nodes (and hostNetwork pods) only by IP",
        ),
        ("explain checkout/web → nowhere/api:8080/tcp", "There is no namespace `nowhere` on prod-eu"),
        ("withdraw just-a-name", "is not `NAMESPACE/NAME`"),
    ],
)
def test_bad_words_get_a_sentence(bench: Bench, cluster: FakeKube, words: str, expected: str) -> None:
    assert expected in text_of(bench.netlog.handle(STRANGER, words))


def test_a_flow_the_policies_allow_says_so(bench: Bench, cluster: FakeKube) -> None:
    text = text_of(bench.netlog.handle(STRANGER, "explain edge/gateway → payments/api:8080/tcp"))
    assert "allow edge/gateway → payments/api:8080/tcp now" in text
    assert "Nothing" not in text


def test_apply_refuses_when_the_proposal_changed_since_the_card(bench: Bench, cluster: FakeKube) -> None:
    card = bench.netlog.handle(OPERATOR, f"propose {DENIED_FLOW}")
    # The api pods gain a label: the same proposal now would select them by it too.
    for pod in cluster.objects[("", "pods")].values():
        if pod["metadata"]["name"].startswith("api-"):
            pod["metadata"]["labels"]["team"] = "payments"
    text = text_of(bench.apply(OPERATOR, change_id(card)))
    assert "changed since this card was made" in text
    assert len(cluster.network_policies("payments")) == 2  # nothing created


def test_half_a_proposal_is_taken_back(bench: Bench, kube: FakeKube) -> None:
    payments_cluster(kube)
    kube.add_network_policy(
        {
            "metadata": {"name": "no-egress", "namespace": "checkout"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]},
        }
    )
    card = bench.netlog.handle(OPERATOR, f"propose {DENIED_FLOW}")
    assert "Create checkout/netlog-allow-egress-" in text_of(card)
    kube.fail_next(403, methods={"POST"}, path_contains="namespaces/payments/networkpolicies")
    text = text_of(bench.apply(OPERATOR, change_id(card)))
    assert "may not `create` `networkpolicies`" in text
    assert "I deleted checkout/netlog-allow-egress-" in text
    assert [p["metadata"]["name"] for p in kube.network_policies("checkout")] == ["no-egress"]


def test_withdraw_deletes_only_the_object_it_listed(bench: Bench, cluster: FakeKube) -> None:
    bench.apply(OPERATOR, change_id(bench.netlog.handle(OPERATOR, f"propose {DENIED_FLOW}")))
    card = bench.netlog.handle(OPERATOR, f"withdraw payments/{PROPOSED}")
    cluster.fail_next(409, methods={"DELETE"})
    text = text_of(bench.apply(OPERATOR, change_id(card)))
    assert "was replaced meanwhile; nothing was deleted" in text
    delete = cluster.requests_to("networkpolicies/" + PROPOSED, "DELETE")[-1]
    assert delete.body["preconditions"]["uid"]


def test_icmp_is_explained_as_icmp(bench: Bench, cluster: FakeKube) -> None:
    text = text_of(bench.netlog.handle(STRANGER, "explain checkout/web → payments/api:icmp"))
    assert "isolated by `default-deny` and `api-from-gateway`" in text
    assert "over ICMP" in text
    assert "/tcp" not in text


def test_an_address_keeps_its_ip_through_propose_and_apply(bench: Bench, cluster: FakeKube) -> None:
    cluster.add_network_policy(
        {
            "metadata": {"name": "no-egress", "namespace": "checkout"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]},
        }
    )
    flow = "checkout/web → partner (203.0.113.7):443/tcp"
    reply = bench.netlog.handle(STRANGER, f"explain {flow}")
    assert "egress from checkout/web is isolated by `no-egress`" in text_of(reply)
    propose = next(e for b in reply.blocks if b["type"] == "actions" for e in b["elements"])
    assert propose["value"].endswith(flow)
    card = bench.netlog.flow_button(OPERATOR, ids.PROPOSE, propose["value"])
    assert [m["spec"]["egress"][0]["to"] for m in yaml_of(card)] == [
        [{"ipBlock": {"cidr": "203.0.113.7/32"}}]
    ]
    done = text_of(bench.apply(OPERATOR, change_id(card)))
    assert (
        "Created NetworkPolicy checkout/netlog-allow-egress-checkout-web-to-partner-203-0-113-7-443-tcp"
        in done
    )


def test_a_manifest_too_long_for_slack_is_not_offered_for_apply(bench: Bench, kube: FakeKube) -> None:
    payments_cluster(kube)
    pods = kube.objects[("", "pods")]
    for pod in pods.values():
        if pod["metadata"]["name"].startswith("api-"):
            pod["metadata"]["labels"] |= {f"example.com/label-{n:02d}": "x" * 60 for n in range(40)}
    reply = bench.netlog.handle(OPERATOR, f"propose {DENIED_FLOW}")
    assert not has_button(reply, ids.APPLY)
    assert "too long to show whole in Slack" in text_of(reply)
    assert all(len(b["text"]["text"]) <= 3000 for b in reply.blocks if b["type"] == "section")
