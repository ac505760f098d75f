"""Issue 12 end to end: a deny published to Pub/Sub becomes an alert whose "Why denied?" menu, picked
through a signed request to `netlog-bot run`, names the policies that isolate the pod; "Propose a
policy" answers with a manifest; an operator's Apply creates it in the (fake) cluster after the usual
confirmation, audited, and the cluster then allows exactly that flow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.adapters.store import Store
from bot.core import netpol
from tests.bot_process import Bot, answers, text, until
from tests.fakes.kube import FakeKube
from tests.fakes.slack import FakeSlack
from tests.logentries import encoded
from tests.policy_cluster import DENIED_FLOW, EXPLANATION, payments_cluster
from tests.pubsub_support import PROJECT, publish
from tests.store_queries import list_audit

OPERATOR = "U0OP"
PROPOSED = "netlog-allow-checkout-web-to-payments-api-8080-tcp"


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        yield payments_cluster(fake)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C0AUDIT", "netlog-audit")
        fake.add_channel("C0PAY", "payments")
        yield fake


@pytest.fixture
def bot(tmp_path: Path, slack: FakeSlack, kube: FakeKube, subscription: tuple[str, str]) -> Iterator[Bot]:
    config = f"""
slack: {{default_channel: C0PAY, audit_channel: C0AUDIT}}
grouping: {{group_wait: 1s, group_interval: 2s}}
access: {{operators: [{OPERATOR}]}}
clusters: {{prod: {{context: prod}}}}
"""
    running = Bot(tmp_path, slack, subscription[1], config)
    running.env["KUBECONFIG"] = str(kube.write_kubeconfig(tmp_path / "kubeconfig", ["prod"]))
    running.start()
    yield running
    running.kill()


def act(bot: Bot, slack: FakeSlack, user: str, action: dict[str, Any], name: str) -> int:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T0TEAM"},
        "channel": {"id": "C0PAY"},
        "container": {"type": "message"},
        "trigger_id": "1.2.3",
        "response_url": slack.response_url(name),
        "actions": [{"block_id": "b", "action_ts": "1", **action}],
    }
    return bot.post_signed(urlencode({"payload": json.dumps(payload)}).encode())


def element(blocks: list[dict[str, Any]], action_id: str) -> dict[str, Any]:
    return next(
        e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id
    )


def test_why_denied_propose_apply_from_the_alert(
    bot: Bot, slack: FakeSlack, kube: FakeKube, subscription: tuple[str, str]
) -> None:
    deny = encoded(
        source="web",
        source_namespace="checkout",
        namespace="payments",
        port=8080,
        cluster="prod",
        project=PROJECT,
    )
    publish(subscription[0], [deny])
    until(lambda: len(slack.messages("C0PAY")) == 1, 30, "the alert", bot)
    menu = element(slack.messages("C0PAY")[0].blocks, "netlog_explain")
    [option] = [o for o in menu["options"] if o["text"]["text"] == "checkout/web → payments/api:8080/tcp"]

    picked = {"action_id": "netlog_explain", "type": "static_select", "selected_option": option}
    assert act(bot, slack, "U0SOMEONE", picked, "why") == 200
    [why] = answers(slack, "why")
    assert why["response_type"] == "ephemeral"
    assert EXPLANATION in text(why)

    propose = element(why["blocks"], "netlog_propose")
    assert (
        act(
            bot,
            slack,
            OPERATOR,
            {"action_id": "netlog_propose", "type": "button", "value": propose["value"]},
            "propose",
        )
        == 200
    )
    [card] = answers(slack, "propose")
    assert f"Create payments/{PROPOSED} on prod?" in text(card)
    assert "podSelector" in text(card)
    apply_value = element(card["blocks"], "netlog_apply")["value"]
    assert not [p for p in kube.network_policies("payments") if p["metadata"]["name"] == PROPOSED]

    assert (
        act(
            bot,
            slack,
            OPERATOR,
            {"action_id": "netlog_apply", "type": "button", "value": apply_value},
            "apply",
        )
        == 200
    )
    [done] = answers(slack, "apply")
    assert f"Created NetworkPolicy payments/{PROPOSED} on prod" in text(done)
    created = next(p for p in kube.network_policies("payments") if p["metadata"]["name"] == PROPOSED)
    assert created["metadata"]["annotations"]["netlog-bot/approved-by"] == OPERATOR
    assert created["metadata"]["annotations"]["netlog-bot/flow"] == DENIED_FLOW

    policies = [netpol.NetworkPolicy.parse(p) for p in kube.network_policies()]
    ns = "kubernetes.io/metadata.name"
    web = netpol.Pod("checkout", "web", {"app": "web"}, {ns: "checkout"})
    api = netpol.Pod(
        "payments", "api", {"app": "api", "tier": "backend"}, {ns: "payments"}, {"http": (8080, "TCP")}
    )
    worker = netpol.Pod("payments", "worker", {"app": "worker", "tier": "backend"}, {ns: "payments"})
    gateway = netpol.Pod("edge", "gateway", {"app": "gateway"}, {ns: "edge"})
    assert netpol.evaluate(policies, netpol.Flow(web, api, 8080)).allowed
    for other in (
        netpol.Flow(web, api, 9090),
        netpol.Flow(web, worker, 8080),
        netpol.Flow(gateway, worker, 8080),
    ):
        assert not netpol.evaluate(policies, other).allowed, other.label

    until(
        lambda: any("apply-proposal" in m.text for m in slack.messages("C0AUDIT")), 20, "the audit line", bot
    )
    store = Store(bot.env["NETLOG_DB_URL"])
    try:
        [row] = [r for r in list_audit(store) if r["action"] == "apply-proposal"]
        assert (row["user_id"], row["cluster"], row["result"]) == (OPERATOR, "prod", "applied")
    finally:
        store.close()
    assert bot.stop() == 0
