"""`/netlog` behind the handlers, in-process with a manual clock: the real store (SQLite and
PostgreSQL), the real kubernetes client against the fake API server, the real WebClient against the
fake Slack. Confirmation, authorization, audit, every Kubernetes error's sentence, mutes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.slack import SlackGateway, make_client
from bot.adapters.store import Store
from bot.core.grouping import GroupKey
from bot.core.netlogging import DENY_ANNOTATION
from bot.core.outbox import AuditLine
from bot.operations import Operations
from bot.render.replies import Reply, audit_message
from bot.settings import EnvSettings, Settings, parse_file_config
from handlers import ids
from tests.fakes.kube import FakeKube
from tests.fakes.slack import FakeSlack
from tests.store_queries import list_audit

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OPERATOR, MEMBER, STRANGER = "U0OP", "U0GRP", "U0NOBODY"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def text_of(reply: Reply) -> str:
    return "\n".join(b["text"]["text"] for b in reply.blocks if b.get("type") == "section") or reply.text


def change_id(reply: Reply) -> str:
    actions = next(b for b in reply.blocks if b["type"] == "actions")
    apply_button = next(e for e in actions["elements"] if e["action_id"] == ids.APPLY)
    return str(apply_button["value"])


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        fake.add_namespace("payments")
        fake.simulate_nodes(3)
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_usergroup("S0OPS", [MEMBER])
        yield fake


def make_ops(
    store: Store, slack: FakeSlack, kube: FakeKube, tmp_path: Path, clusters: tuple[str, ...] = ("prod-eu",)
) -> tuple[Operations, Clock]:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", list(clusters))
    config = {
        "slack": {"default_channel": "C0DEF", "audit_channel": "C0AUDIT"},
        "access": {"operators": [OPERATOR], "operator_groups": ["S0OPS"]},
        "clusters": {name: {"context": name} for name in clusters},
        "routes": [{"match": {"namespace": "payments*"}, "channel": "C0PAY"}],
        "mutes": {"default_duration": "1h", "max_duration": "1d"},
    }
    settings = Settings(EnvSettings(KUBECONFIG=str(kubeconfig)), parse_file_config(config))
    clock = Clock()
    ops = Operations(settings, store, SlackGateway(make_client(slack.token, slack.base_url)), clock)
    return ops, clock


@pytest.fixture
def ops(store: Store, slack: FakeSlack, kube: FakeKube, tmp_path: Path) -> tuple[Operations, Clock]:
    return make_ops(store, slack, kube, tmp_path)


def deny_spec(kube: FakeKube) -> dict[str, Any]:
    assert kube.networklogging is not None
    return dict(kube.networklogging["spec"]["cluster"]["deny"])


def audit_rows(store: Store) -> list[dict[str, Any]]:
    return list(reversed(list_audit(store)))


# -- the happy path --------------------------------------------------------------------------------


def test_enable_deny_confirm_apply_audit_and_rollout(
    ops: tuple[Operations, Clock], kube: FakeKube, store: Store
) -> None:
    operations, _ = ops
    card = operations.handle(OPERATOR, "enable deny")
    assert "Now: `deny: log=false, delegate=false`" in text_of(card)
    assert "New: `deny: log=true, delegate=false`: Every denied connection is logged." in text_of(card)
    assert deny_spec(kube) == {"log": False, "delegate": False}  # nothing changes before Apply

    cid = change_id(card)
    done = operations.apply(OPERATOR, cid)
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
    assert "<@U0OP> `enable` on prod-eu: applied" in audit_message(queued.entry).text
    follow_up = operations.follow_up(cid)
    assert follow_up is not None
    assert "3 node(s) of prod-eu applied" in text_of(follow_up)

    again = operations.apply(OPERATOR, cid)
    assert "already applied" in text_of(again)
    assert len(kube.requests_to("networkloggings/default", "PATCH")) == 1


def test_disable_sends_delegate_false_and_delegate_on_while_off_is_refused(
    ops: tuple[Operations, Clock], kube: FakeKube
) -> None:
    operations, _ = ops
    refused = operations.handle(OPERATOR, "delegate deny on")
    assert "delegation without logging is invalid" in text_of(refused)
    assert "enable deny --delegate" in text_of(refused)
    operations.apply(OPERATOR, change_id(operations.handle(OPERATOR, "enable deny --delegate")))
    assert deny_spec(kube) == {"log": True, "delegate": True}
    operations.apply(OPERATOR, change_id(operations.handle(OPERATOR, "disable deny")))
    assert deny_spec(kube) == {"log": False, "delegate": False}


def test_enabling_allow_without_delegation_warns_about_volume(ops: tuple[Operations, Clock]) -> None:
    operations, _ = ops
    card = operations.handle(OPERATOR, "enable allow")
    assert "log volume" in text_of(card)
    assert "Cloud Logging storage is billed" in text_of(card)


def test_ns_logging_annotates_and_removes(ops: tuple[Operations, Clock], kube: FakeKube) -> None:
    operations, _ = ops
    operations.apply(OPERATOR, change_id(operations.handle(OPERATOR, "ns-logging payments on")))
    assert kube.namespaces["payments"]["metadata"]["annotations"][DENY_ANNOTATION] == "true"
    status = text_of(operations.handle(STRANGER, "status"))
    assert "namespaces annotated for deny logging: `payments`" in status
    operations.apply(OPERATOR, change_id(operations.handle(OPERATOR, "ns-logging payments off")))
    assert DENY_ANNOTATION not in (kube.namespaces["payments"]["metadata"].get("annotations") or {})
    missing = operations.handle(OPERATOR, "ns-logging nowhere on")
    assert "There is no namespace `nowhere` on prod-eu" in text_of(missing)


# -- safety ----------------------------------------------------------------------------------------


def test_unauthorized_users_are_refused_told_who_can_and_audited(
    ops: tuple[Operations, Clock], store: Store
) -> None:
    operations, _ = ops
    reply = operations.handle(STRANGER, "enable deny")
    assert "Only operators may run `enable`: <@U0OP>, <!subteam^S0OPS>" in text_of(reply)
    [row] = audit_rows(store)
    assert (row["user_id"], row["result"]) == (STRANGER, "refused")
    lines = [item.message for item in store.outbox.pending() if isinstance(item.message, AuditLine)]
    assert any("refused" in audit_message(line.entry).text for line in lines)


def test_members_of_operator_groups_may_act_and_groups_are_cached(
    ops: tuple[Operations, Clock], slack: FakeSlack
) -> None:
    operations, _ = ops
    assert "Apply" in json.dumps(operations.handle(MEMBER, "enable deny").blocks)
    operations.handle(MEMBER, "enable deny")
    assert len(slack.calls_to("usergroups.users.list")) == 1


def test_apply_rechecks_authorization(ops: tuple[Operations, Clock], kube: FakeKube) -> None:
    operations, _ = ops
    card = operations.handle(OPERATOR, "enable deny")
    assert "Only operators" in text_of(operations.apply(STRANGER, change_id(card)))
    assert deny_spec(kube)["log"] is False


def test_cards_expire_after_ten_minutes_and_cancel_is_final(
    ops: tuple[Operations, Clock], kube: FakeKube
) -> None:
    operations, clock = ops
    card = operations.handle(OPERATOR, "enable deny")
    clock.now += timedelta(minutes=11)
    assert "expired" in text_of(operations.apply(OPERATOR, change_id(card)))
    other = operations.handle(OPERATOR, "enable deny")
    assert "Cancelled" in text_of(operations.cancel(OPERATOR, change_id(other)))
    assert "already cancelled" in text_of(operations.apply(OPERATOR, change_id(other)))
    assert deny_spec(kube)["log"] is False


def test_read_commands_are_open_to_everyone(ops: tuple[Operations, Clock]) -> None:
    operations, _ = ops
    status = text_of(operations.handle(STRANGER, "status"))
    assert "*prod-eu*" in status
    assert "Denied connections are not logged." in status
    routes = text_of(operations.handle(STRANGER, "routes test namespace=payments-eu cluster=prod-eu"))
    assert "C0PAY: route 1 (`namespace=payments*`)" in routes
    assert "C0DEF: the default channel" in text_of(operations.handle(STRANGER, "routes test namespace=web"))


def test_syntax_errors_answer_with_the_problem_and_the_help(ops: tuple[Operations, Clock]) -> None:
    operations, _ = ops
    reply = text_of(operations.handle(OPERATOR, "enable maybe"))
    assert "`maybe` is neither `allow` nor `deny`" in reply
    assert "`/netlog` commands" in reply


def test_several_clusters_make_mutating_commands_ask_which(
    store: Store, slack: FakeSlack, kube: FakeKube, tmp_path: Path
) -> None:
    operations, _ = make_ops(store, slack, kube, tmp_path, ("prod-eu", "prod-us"))
    assert "Which cluster? Add `--cluster NAME`; configured: prod-eu, prod-us" in text_of(
        operations.handle(OPERATOR, "enable deny")
    )
    assert "Apply" in json.dumps(operations.handle(OPERATOR, "enable deny --cluster prod-us").blocks)
    status = text_of(operations.handle(STRANGER, "status"))
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
def test_kubernetes_errors_are_sentences(
    ops: tuple[Operations, Clock], kube: FakeKube, status: int, expected: str
) -> None:
    operations, _ = ops
    kube.fail_next(status, 1)
    assert expected in text_of(operations.handle(OPERATOR, "enable deny"))


def test_a_cluster_without_networklogging_is_explained(ops: tuple[Operations, Clock], kube: FakeKube) -> None:
    operations, _ = ops
    kube.networklogging = None
    assert "has no NetworkLogging object: is it a Dataplane V2 cluster?" in text_of(
        operations.handle(OPERATOR, "enable deny")
    )


def test_a_conflict_is_retried_once_with_a_fresh_read(ops: tuple[Operations, Clock], kube: FakeKube) -> None:
    operations, _ = ops
    card = operations.handle(OPERATOR, "enable deny")
    kube.fail_next(409, 1, methods={"PATCH"})
    assert "now has `deny: log=true" in text_of(operations.apply(OPERATOR, change_id(card)))
    assert len(kube.requests_to("networkloggings/default", "PATCH")) == 2
    card = operations.handle(OPERATOR, "disable deny")
    kube.fail_next(409, 2, methods={"PATCH"})
    assert "Someone else changed NetworkLogging on prod-eu at the same time" in text_of(
        operations.apply(OPERATOR, change_id(card))
    )


def test_a_slow_api_server_is_reported(
    ops: tuple[Operations, Clock], kube: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    operations, _ = ops
    monkeypatch.setattr("bot.adapters.kube.TIMEOUT", 0.5)
    kube.slow_next(2.0)
    assert "did not answer" in text_of(operations.handle(OPERATOR, "enable deny"))


# -- mutes -----------------------------------------------------------------------------------------


def test_mute_from_text_then_list_then_unmute(ops: tuple[Operations, Clock], store: Store) -> None:
    operations, clock = ops
    card = operations.handle(OPERATOR, "mute namespace=payments dest_port=53 for 2h -- known DNS issue")
    assert "for 2h" in text_of(card)
    assert "known DNS issue" in text_of(card)
    assert "Muted #" in text_of(operations.apply(OPERATOR, change_id(card)))
    [mute] = store.mutes.active(clock.now)
    assert mute.matchers == (("namespace", "payments"), ("dest_port", "53"))
    assert mute.expires_at == clock.now + timedelta(hours=2)
    assert "namespace=payments dest_port=53" in text_of(operations.handle(STRANGER, "mutes"))
    operations.apply(OPERATOR, change_id(operations.handle(OPERATOR, f"unmute {mute.id}")))
    assert store.mutes.active(clock.now) == []
    assert [r["action"] for r in audit_rows(store)] == ["mute", "unmute"]


def test_mutes_have_a_maximum(ops: tuple[Operations, Clock]) -> None:
    operations, _ = ops
    assert "Mutes last at most 24 hours" in text_of(operations.handle(OPERATOR, "mute namespace=x for 3d"))


def test_mute_button_mutes_exactly_that_group(ops: tuple[Operations, Clock], store: Store) -> None:
    operations, clock = ops
    key = GroupKey("C0PAY", 0, (("cluster", "prod-eu"), ("namespace", "pay*ments"))).encode()
    assert "Muted #" in text_of(operations.mute_group(OPERATOR, key, timedelta(hours=1), "C0PAY"))
    [mute] = store.mutes.active(clock.now)
    assert mute.group_key == key  # that alert only, not the same labels routed elsewhere
    assert mute.matches({"cluster": "prod-eu", "namespace": "pay*ments"})
    assert not mute.matches({"cluster": "prod-eu", "namespace": "payroll-payments"})
    assert "does not name an alert group" in text_of(
        operations.mute_group(OPERATOR, "{forged", timedelta(hours=1), "C")
    )
    assert "at most" in text_of(operations.mute_group(OPERATOR, key, timedelta(days=3), "C0PAY"))
    assert "Only operators" in text_of(operations.mute_group(STRANGER, key, timedelta(hours=1), "C0PAY"))
