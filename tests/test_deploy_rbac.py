"""deploy/kubernetes/rbac.yaml grants exactly what the bot uses. Every command that reaches Kubernetes
(`/netlog status`, `enable`/`delegate`/`disable` with the rollout watch after Apply, `ns-logging`,
`digest`, the Home tab) runs through the real adapter and kubernetes client against the fake API
server; each request it served is read as the API server's authorizer reads it (verb, API group,
resource, name), then (a) every one is allowed by the ClusterRole and (b) every verb on every resource
the ClusterRole grants was used by one of them."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.adapters.kube import ClusterClient
from bot.adapters.slack import SlackGateway, make_client
from bot.adapters.store import Store
from bot.services import BackgroundTasks, build_netlog, configured_clusters
from bot.services.home import Home
from tests.clock import ManualClock
from tests.fakes.kube import FakeKube, Request
from tests.fakes.slack import FakeSlack
from tests.policy_cluster import DENIED_FLOW, EXPLANATION, payments_cluster
from tests.services.support import MEMBER, OPERATOR, STRANGER, Bench, change_id, settings_for, text_of

ROOT = Path(__file__).resolve().parent.parent
RBAC = ROOT / "deploy" / "kubernetes" / "rbac.yaml"
APPLY_RBAC = ROOT / "deploy" / "kubernetes" / "rbac-apply.yaml"  # opt-in: create and delete proposals
# ClusterClient's methods, each driven below; a new one must be added here and to the scenario.
DRIVEN = {
    "get_logging",
    "patch_logging",
    "annotated_namespaces",
    "namespace_annotated",
    "set_namespace_logging",
    "watch_logging_events",
    "network_policies",
    "managed_policies",
    "create_network_policy",
    "delete_network_policy",
    "pods",
    "namespace_labels",
    "workload",
}


@dataclass(frozen=True)
class Attributes:
    """What the API server's authorizer decides on (k8s.io/apiserver RequestInfo)."""

    verb: str
    group: str
    resource: str
    name: str = ""


def attributes(request: Request) -> Attributes:
    """The verb as the API server derives it: GET on a name is get, on a collection list, with
    `watch=true` watch; POST create, PUT update, PATCH patch, DELETE delete (deletecollection)."""
    found = re.fullmatch(r"/api/v1/(.+)|/apis/([^/]+)/[^/]+/(.+)", request.path)
    assert found, request.path
    group, rest = ("", found[1]) if found[1] else (found[2], found[3])
    parts = rest.split("/")
    if parts[0] == "namespaces" and len(parts) >= 3:
        parts = parts[2:]  # a namespaced resource: namespaces/NS/RESOURCE[/NAME]
    resource, name = parts[0], "/".join(parts[1:])
    assert "/" not in name, f"a subresource: {request.path}"
    watch = request.query.get("watch", "").lower() in ("true", "1")
    verb = {
        "GET": "watch" if watch else "get" if name else "list",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }[request.method]
    return Attributes(verb, group, resource, name)


def allows(rule: dict[str, Any], asked: Attributes) -> bool:
    """One PolicyRule as the RBAC authorizer matches it (`*` included; resourceNames need a name)."""

    def has(key: str, value: str) -> bool:
        return value in rule.get(key, []) or "*" in rule.get(key, [])

    named = not rule.get("resourceNames") or asked.name in rule["resourceNames"]
    return (
        has("verbs", asked.verb)
        and has("apiGroups", asked.group)
        and has("resources", asked.resource)
        and named
    )


def cluster_role(path: Path = RBAC) -> list[dict[str, Any]]:
    (role,) = (d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d["kind"] == "ClusterRole")
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def both_roles() -> list[dict[str, Any]]:
    return [*cluster_role(), *cluster_role(APPLY_RBAC)]


@pytest.fixture(scope="module")
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        fake.add_namespace("payments")
        fake.simulate_nodes(2)
        yield fake


@pytest.fixture(scope="module")
def served(kube: FakeKube, tmp_path_factory: pytest.TempPathFactory) -> list[Attributes]:
    """Every request the bot's Kubernetes calls made, after a run through each of them."""
    tmp_path = tmp_path_factory.mktemp("rbac")
    store = Store(f"sqlite:///{tmp_path / 'netlog.db'}")
    store.migrate()
    background = BackgroundTasks()
    background.start()
    with FakeSlack() as slack:
        slack.add_usergroup("S0OPS", [MEMBER])
        try:
            drive(kube, slack, store, background, tmp_path)
        finally:
            background.stop(timeout=10)
            store.close()
    return [attributes(r) for r in kube.requests_to("")]


def drive(kube: FakeKube, slack: FakeSlack, store: Store, background: BackgroundTasks, tmp: Path) -> None:
    settings = settings_for(kube.write_kubeconfig(tmp / "kubeconfig", ["prod-eu"]), ("prod-eu",))
    clusters = configured_clusters(settings)
    gateway = SlackGateway(make_client(slack.token, slack.base_url))
    clock = ManualClock()
    bench = Bench(build_netlog(settings, store, gateway, clusters, clock, background, rollout_wait=1), clock)
    netlog = bench.netlog
    status = text_of(netlog.handle(STRANGER, "status"))  # get_logging, annotated_namespaces
    assert "deny `deny: log=false, delegate=false`" in status
    assert "namespaces annotated for deny logging: none" in status
    for command in ("enable deny", "delegate deny on", "disable deny"):  # patch_logging, the watch
        done, report = bench.apply_all(OPERATOR, change_id(netlog.handle(OPERATOR, command)), 2)
        assert "now has" in text_of(done), text_of(done)
        assert "node(s) of prod-eu applied" in text_of(report), text_of(report)
    # namespace_annotated, set_namespace_logging
    for command in ("ns-logging payments on", "ns-logging payments off"):
        done = bench.apply(OPERATOR, change_id(netlog.handle(OPERATOR, command)))
        assert "Namespace `payments` on prod-eu is " in text_of(done), text_of(done)
    digest = text_of(netlog.handle(STRANGER, "digest since=6h", "C0PAY"))  # get_logging
    assert "`prod-eu`: deny logging is off" in digest
    home = json.dumps(Home(store, clusters, clock, netlog.access.allowed).view(STRANGER))  # get_logging
    assert "deny `deny: log=false, delegate=false`" in home
    # explain and propose: namespace_labels, pods, network_policies; workload for each kind (a
    # workload with no running pod is looked up as each kind in turn)
    payments_cluster(kube)
    assert EXPLANATION in text_of(netlog.handle(STRANGER, f"explain {DENIED_FLOW}"))
    assert "No pod of `checkout/gone`" in text_of(
        netlog.handle(STRANGER, "explain checkout/gone → payments/api:80/tcp")
    )
    # Apply, proposals, withdraw: create_network_policy, managed_policies, delete_network_policy
    done = bench.apply(OPERATOR, change_id(netlog.handle(OPERATOR, f"propose {DENIED_FLOW}")))
    assert "Created NetworkPolicy" in text_of(done), text_of(done)
    assert "netlog-allow-" in text_of(netlog.handle(STRANGER, "proposals"))
    name = "payments/netlog-allow-checkout-web-to-payments-api-8080-tcp"
    done = bench.apply(OPERATOR, change_id(netlog.handle(OPERATOR, f"withdraw {name}")))
    assert "Deleted NetworkPolicy" in text_of(done), text_of(done)


def test_every_call_of_the_adapter_is_driven() -> None:
    methods = {n for n, _ in inspect.getmembers(ClusterClient, inspect.isfunction) if not n.startswith("_")}
    assert methods == DRIVEN


def test_the_cluster_role_allows_every_request_the_bot_makes(served: list[Attributes]) -> None:
    rules = both_roles()
    # SelfSubjectAccessReviews (is Apply allowed?) need no grant: every identity may ask about itself.
    asked = [a for a in served if a.resource != "selfsubjectaccessreviews"]
    refused = sorted({a for a in asked if not any(allows(rule, a) for rule in rules)}, key=str)
    assert not refused, f"rbac.yaml and rbac-apply.yaml do not allow: {refused}"


def test_only_applying_proposals_needs_the_opt_in_role(served: list[Attributes]) -> None:
    base = cluster_role()
    needs_opt_in = {
        (a.verb, a.resource)
        for a in served
        if a.resource != "selfsubjectaccessreviews" and not any(allows(rule, a) for rule in base)
    }
    assert needs_opt_in == {("create", "networkpolicies"), ("delete", "networkpolicies")}


def test_the_cluster_role_grants_nothing_the_bot_does_not_use(served: list[Attributes]) -> None:
    unused = [
        (verb, group, resource, rule.get("resourceNames", []))
        for rule in both_roles()
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if not any(
            (a.verb, a.group, a.resource) == (verb, group, resource)
            and (not rule.get("resourceNames") or a.name in rule["resourceNames"])
            for a in served
        )
    ]
    assert not unused, f"rbac.yaml grants what the bot never asks for: {unused}"
    assert {a.verb for a in served} == {"get", "list", "patch", "watch", "create", "delete"}


def test_the_readme_shows_the_rules_as_they_are() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### RBAC for the bot", 1)[1].split("\n### ", 1)[0]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert yaml.safe_load(block)["rules"] == cluster_role()
