"""`/netlog` through Slack's front door: signed slash commands and button clicks sent over HTTP to
`netlog-bot run` (a subprocess), which talks to the fake Kubernetes API server and the fake Slack;
an alert's Mute button edits the alert to say who muted it, until when.
The ack comes back within Slack's 3 s; answers arrive on the response_url."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bot.adapters.store import Store
from bot.core.grouping import GroupKey
from tests.bot_process import Bot, answers, text, until
from tests.fakes.kube import FakeKube
from tests.fakes.slack import FakeSlack
from tests.logentries import encoded
from tests.pubsub_support import PROJECT, publish
from tests.store_queries import list_audit

OPERATOR, STRANGER = "U0OP", "U0NOBODY"


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        fake.simulate_nodes(2)
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C0AUDIT", "netlog-audit")
        fake.add_channel("C0WEB", "web")
        yield fake


@pytest.fixture
def bot(tmp_path: Path, slack: FakeSlack, kube: FakeKube, subscription: tuple[str, str]) -> Iterator[Bot]:
    config = f"""
slack: {{default_channel: C0WEB, audit_channel: C0AUDIT}}
access: {{operators: [{OPERATOR}]}}
clusters: {{prod-eu: {{context: prod-eu}}}}
"""
    running = Bot(tmp_path, slack, subscription[1], config)
    running.env["KUBECONFIG"] = str(kube.write_kubeconfig(tmp_path / "kubeconfig", ["prod-eu"]))
    running.start()
    yield running
    if running.process and running.process.poll() is None:
        running.stop()


def slash(
    bot: Bot, slack: FakeSlack, user: str, text: str, name: str, elapsed: list[float] | None = None
) -> int:
    form = {
        "token": "legacy",
        "team_id": "T0TEAM",
        "channel_id": "C0WEB",
        "user_id": user,
        "command": "/netlog",
        "text": text,
        "response_url": slack.response_url(name),
        "trigger_id": "1.2.3",
    }
    return bot.post_signed(urlencode(form).encode(), elapsed=elapsed)


def click(bot: Bot, slack: FakeSlack, user: str, action_id: str, value: str, name: str) -> int:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T0TEAM"},
        "channel": {"id": "C0WEB"},
        "container": {"type": "message"},
        "trigger_id": "1.2.3",
        "response_url": slack.response_url(name),
        "actions": [
            {"action_id": action_id, "block_id": "b", "type": "button", "value": value, "action_ts": "1"}
        ],
    }
    return bot.post_signed(urlencode({"payload": json.dumps(payload)}).encode())


def test_enable_deny_from_slack_confirm_apply_audit_and_nodes(
    bot: Bot, slack: FakeSlack, kube: FakeKube
) -> None:
    elapsed: list[float] = []
    assert slash(bot, slack, OPERATOR, "enable deny", "cmd", elapsed) == 200
    assert elapsed[0] < 3.0  # acked before any Kubernetes call
    [card] = answers(slack, "cmd")
    assert card["response_type"] == "ephemeral"
    assert "Every denied connection is logged." in text(card)
    apply_button = next(
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "netlog_apply"
    )
    assert kube.networklogging is not None
    assert kube.networklogging["spec"]["cluster"]["deny"]["log"] is False

    assert click(bot, slack, OPERATOR, "netlog_apply", apply_button["value"], "apply") == 200
    done, nodes = answers(slack, "apply", 2)
    assert "now has `deny: log=true, delegate=false`" in text(done)
    assert "2 node(s) of prod-eu applied" in text(nodes)
    assert kube.networklogging["spec"]["cluster"]["deny"] == {"log": True, "delegate": False}
    until(lambda: len(slack.messages("C0AUDIT")) == 1, 20, "the audit-channel message")
    assert "<@U0OP> turned on deny logging on cluster `prod-eu`" in slack.messages("C0AUDIT")[0].text

    assert click(bot, slack, OPERATOR, "netlog_apply", apply_button["value"], "again") == 200
    assert "already applied" in text(answers(slack, "again")[0])
    assert len(kube.requests_to("networkloggings/default", "PATCH")) == 1
    store = Store(bot.env["NETLOG_DB_URL"])
    try:
        [row] = list_audit(store)
        assert (row["user_id"], row["action"], row["result"]) == (OPERATOR, "enable", "applied")
    finally:
        store.close()


def test_strangers_are_refused_and_audited(bot: Bot, slack: FakeSlack, kube: FakeKube) -> None:
    assert slash(bot, slack, STRANGER, "disable deny", "cmd") == 200
    assert "Only operators may run `disable`: <@U0OP>" in text(answers(slack, "cmd")[0])
    until(lambda: len(slack.messages("C0AUDIT")) == 1, 20, "the audit-channel message")
    assert "refused" in slack.messages("C0AUDIT")[0].text
    assert kube.requests_to("networkloggings/default", "PATCH") == []


def test_syntax_errors_get_the_help_and_reads_are_open(bot: Bot, slack: FakeSlack) -> None:
    assert slash(bot, slack, STRANGER, "enable please", "bad") == 200
    bad = text(answers(slack, "bad")[0])
    assert "neither `allow` nor `deny`" in bad
    assert "/netlog status" in bad
    assert slash(bot, slack, STRANGER, "status", "status") == 200
    assert "Denied connections are not logged." in text(answers(slack, "status")[0])


def test_unsigned_or_stale_commands_are_rejected(bot: Bot, slack: FakeSlack) -> None:
    body = urlencode(
        {"command": "/netlog", "text": "status", "user_id": OPERATOR, "response_url": slack.response_url("x")}
    ).encode()
    assert bot.post_signed(body, secret="wrong") == 401
    assert bot.post_signed(body, timestamp=int(time.time()) - 6 * 60) == 401
    time.sleep(1)
    assert slack.responses("x") == []


def test_the_mute_button_of_an_alert_edits_it_to_say_who_muted_it_until_when(
    tmp_path: Path, slack: FakeSlack, subscription: tuple[str, str]
) -> None:
    config = f"""
slack: {{default_channel: C0WEB, audit_channel: C0AUDIT}}
grouping: {{group_wait: 2s, group_interval: 2s, resolve_after: 10m}}
access: {{operators: [{OPERATOR}]}}
"""
    running = Bot(tmp_path, slack, subscription[1], config).start()
    try:
        publish(subscription[0], [encoded(namespace="web", prefix="mute-", project=PROJECT)])
        until(lambda: len(slack.messages("C0WEB")) == 1, 30, "the alert", running)
        [alert] = slack.messages("C0WEB")
        actions = next(b for b in alert.blocks if b["type"] == "actions")
        key = next(e["value"] for e in actions["elements"] if e["action_id"] == "netlog_mute_1h")
        assert click(running, slack, OPERATOR, "netlog_mute_1h", key, "mute") == 200
        assert "Muted #1" in text(answers(slack, "mute")[0])
        until(
            lambda: ":mute:" in slack.messages("C0WEB")[0].blocks[1]["text"]["text"], 20, "the edit", running
        )
        state = slack.messages("C0WEB")[0].blocks[1]["text"]["text"]
        assert re.fullmatch(
            r":mute: \*Muted\* by <@U0OP> until <!date\^\d+\^\{date_short_pretty\} \{time\}\|[^>]+ UTC>",
            state,
        )
        until(lambda: len(slack.messages("C0AUDIT")) == 1, 20, "the audit line", running)
        assert slack.messages("C0AUDIT")[0].text.startswith(":white_check_mark: <@U0OP> muted #1 `cluster=")
    finally:
        running.stop()


def test_a_mute_button_mutes_its_group(bot: Bot, slack: FakeSlack) -> None:
    key = GroupKey("C0WEB", None, (("cluster", "prod-eu"), ("namespace", "web"))).encode()
    assert click(bot, slack, OPERATOR, "netlog_mute_1h", key, "mute") == 200
    assert "Muted #1" in text(answers(slack, "mute")[0])
    assert slash(bot, slack, STRANGER, "mutes", "list") == 200
    assert "cluster=prod-eu namespace=web" in text(answers(slack, "list")[0])


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (403, "The bot may not `get` `networkloggings`"),
        (404, "has no NetworkLogging object: is it a Dataplane V2 cluster?"),
        (503, "The API server of prod-eu did not answer"),
    ],
)
def test_kubernetes_errors_reach_slack_as_sentences(
    bot: Bot, slack: FakeSlack, kube: FakeKube, status: int, expected: str
) -> None:
    kube.fail_next(status, 1)
    assert slash(bot, slack, OPERATOR, "enable deny", "cmd") == 200
    assert expected in text(answers(slack, "cmd")[0])
