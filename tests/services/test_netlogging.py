"""NetworkLogging and namespace changes through `/netlog`: the card shows now and new, Apply patches
once and audits, a second click changes nothing; Kubernetes errors come back as sentences."""

from __future__ import annotations

import json

import pytest

from bot.adapters.store import Store
from bot.core.netlogging import DENY_ANNOTATION
from bot.core.outbox import AuditLine
from bot.render.audit import audit_message
from tests.fakes.kube import FakeKube
from tests.services.support import (
    OPERATOR,
    STRANGER,
    Bench,
    MakeBench,
    audit_rows,
    change_id,
    deny_spec,
    text_of,
)


def test_enable_deny_confirm_apply_audit_and_rollout(bench: Bench, kube: FakeKube, store: Store) -> None:
    card = bench.netlog.handle(OPERATOR, "enable deny")
    assert "Now: `deny: log=false, delegate=false`" in text_of(card)
    assert "New: `deny: log=true, delegate=false`: Every denied connection is logged." in text_of(card)
    assert deny_spec(kube) == {"log": False, "delegate": False}  # nothing changes before Apply

    cid = change_id(card)
    done, follow_up = bench.apply_all(OPERATOR, cid, 2)
    assert "now has `deny: log=true, delegate=false`" in text_of(done)
    assert deny_spec(kube) == {"log": True, "delegate": False}
    patch = kube.requests_to("networkloggings/default", "PATCH")[-1]
    assert patch.headers["content-type"].startswith("application/merge-patch+json")
    [row] = audit_rows(store)
    assert (row["user_id"], row["action"], row["cluster"], row["result"]) == (
        OPERATOR,
        "enable",
        "prod-eu",
        "applied",
    )
    assert (row["before"], row["after"]) == (
        "deny: log=false, delegate=false",
        "deny: log=true, delegate=true".replace("true, delegate=true", "true, delegate=false"),
    )
    [queued] = [item.message for item in store.outbox.pending() if isinstance(item.message, AuditLine)]
    assert queued.channel == "C0AUDIT"
    assert audit_message(queued.entry).text == (
        ":white_check_mark: <@U0OP> turned on deny logging on cluster `prod-eu`: "
        "now `log=true, delegate=false`, was `log=false, delegate=false` (`/netlog enable deny`)."
    )
    assert "3 node(s) of prod-eu applied" in text_of(follow_up)

    again = bench.apply(OPERATOR, cid)
    assert "already applied" in text_of(again)
    assert len(kube.requests_to("networkloggings/default", "PATCH")) == 1


def test_disable_sends_delegate_false_and_delegate_on_while_off_is_refused(
    bench: Bench, kube: FakeKube
) -> None:
    netlog = bench.netlog
    refused = netlog.handle(OPERATOR, "delegate deny on")
    assert "delegation without logging is invalid" in text_of(refused)
    assert "enable deny --delegate" in text_of(refused)
    bench.apply(OPERATOR, change_id(netlog.handle(OPERATOR, "enable deny --delegate")))
    assert deny_spec(kube) == {"log": True, "delegate": True}
    bench.apply(OPERATOR, change_id(netlog.handle(OPERATOR, "disable deny")))
    assert deny_spec(kube) == {"log": False, "delegate": False}


def test_enabling_allow_without_delegation_warns_about_volume(bench: Bench) -> None:
    card = bench.netlog.handle(OPERATOR, "enable allow")
    assert "log volume" in text_of(card)
    assert "Cloud Logging storage is billed" in text_of(card)


def test_ns_logging_annotates_and_removes(bench: Bench, kube: FakeKube) -> None:
    netlog = bench.netlog
    bench.apply(OPERATOR, change_id(netlog.handle(OPERATOR, "ns-logging payments on")))
    assert kube.namespaces["payments"]["metadata"]["annotations"][DENY_ANNOTATION] == "true"
    status = text_of(netlog.handle(STRANGER, "status"))
    assert "namespaces annotated for deny logging: `payments`" in status
    bench.apply(OPERATOR, change_id(netlog.handle(OPERATOR, "ns-logging payments off")))
    assert DENY_ANNOTATION not in (kube.namespaces["payments"]["metadata"].get("annotations") or {})
    missing = netlog.handle(OPERATOR, "ns-logging nowhere on")
    assert "There is no namespace `nowhere` on prod-eu" in text_of(missing)


def test_several_clusters_make_mutating_commands_ask_which(make_bench: MakeBench) -> None:
    netlog = make_bench(("prod-eu", "prod-us")).netlog
    assert "Which cluster? Add `--cluster NAME`; configured: prod-eu, prod-us" in text_of(
        netlog.handle(OPERATOR, "enable deny")
    )
    assert "Apply" in json.dumps(netlog.handle(OPERATOR, "enable deny --cluster prod-us").blocks)
    status = text_of(netlog.handle(STRANGER, "status"))
    assert "*prod-eu*" in status
    assert "*prod-us*" in status


# -- Kubernetes errors become sentences -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            403,
            "The bot may not `get` `networkloggings` (networking.gke.io) on prod-eu: apply the ClusterRole",
        ),
        (500, "The API server of prod-eu did not answer"),
        (503, "The API server of prod-eu did not answer"),
    ],
)
def test_kubernetes_errors_are_sentences(bench: Bench, kube: FakeKube, status: int, expected: str) -> None:
    kube.fail_next(status, 1)
    assert expected in text_of(bench.netlog.handle(OPERATOR, "enable deny"))


def test_a_cluster_without_networklogging_is_explained(bench: Bench, kube: FakeKube) -> None:
    kube.networklogging = None
    assert "has no NetworkLogging object: is it a Dataplane V2 cluster?" in text_of(
        bench.netlog.handle(OPERATOR, "enable deny")
    )


def test_a_conflict_is_retried_once_with_a_fresh_read(bench: Bench, kube: FakeKube) -> None:
    card = bench.netlog.handle(OPERATOR, "enable deny")
    kube.fail_next(409, 1, methods={"PATCH"})
    assert "now has `deny: log=true" in text_of(bench.apply(OPERATOR, change_id(card)))
    assert len(kube.requests_to("networkloggings/default", "PATCH")) == 2
    card = bench.netlog.handle(OPERATOR, "disable deny")
    kube.fail_next(409, 2, methods={"PATCH"})
    assert "Someone else changed NetworkLogging on prod-eu at the same time" in text_of(
        bench.apply(OPERATOR, change_id(card))
    )


def test_a_failed_change_is_audited_as_failed(bench: Bench, kube: FakeKube, store: Store) -> None:
    card = bench.netlog.handle(OPERATOR, "enable deny")
    kube.fail_next(403, 1, methods={"PATCH"})
    assert "The bot may not `patch` `networkloggings`" in text_of(bench.apply(OPERATOR, change_id(card)))
    [row] = audit_rows(store)
    assert (row["action"], row["cluster"], row["result"]) == ("enable", "prod-eu", "failed")
    assert deny_spec(kube)["log"] is False


def test_a_slow_api_server_is_reported(bench: Bench, kube: FakeKube, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.adapters.kube.TIMEOUT", 0.5)
    kube.slow_next(2.0)
    assert "did not answer" in text_of(bench.netlog.handle(OPERATOR, "enable deny"))
