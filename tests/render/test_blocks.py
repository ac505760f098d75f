"""Block Kit rendering: golden JSON for each message type (open, update, resolve, thread reply),
escaping of hostile names, the group without a namespace (its header, fields and Logs Explorer
link), and Slack's limits (checked with the fake Slack's validator).

Regenerate the golden files after an intended change with `NETLOG_UPDATE_GOLDEN=1 make unit`,
then read the diff."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest

from bot.core.grouping import FlowKey, FlowSummary, Notification, NotificationKind
from bot.render import ids
from bot.render.blocks import HEADER_LIMIT, SECTION_LIMIT, SlackMessage, render_alert, render_thread_reply
from tests.fakes.slack import block_errors

GOLDEN = Path(__file__).parent.parent / "golden"
T0 = datetime(2026, 1, 15, 10, 2, tzinfo=UTC)


def flow(
    source: str, dest: str, port: int | None, count: int, minutes: int, direction: str = "ingress"
) -> FlowSummary:
    key = FlowKey("prod-eu", direction, source, dest, port, "tcp" if port else "icmp")
    return FlowSummary(key, count, T0, T0 + timedelta(minutes=minutes))


FLOWS = (
    flow("checkout/web", "payments/api", 8080, 1200, 17),
    flow("payments/api", "203.0.113.10", 443, 21, 9, "egress"),
    flow("monitoring/prometheus", "payments/api", 9090, 12, 11),
    flow("node/gke-prod-eu-pool-1-9c2d-4kq1", "payments/api", None, 6, 12),
)


def note(
    kind: NotificationKind, *, labels: tuple[tuple[str, str], ...] | None = None, **changes: object
) -> Notification:
    base = Notification(
        kind=kind,
        group_id="1f2e3d4c5b6a7980@2026-01-15T10:02:30+00:00",
        group_key='["#payments-oncall",0,[["cluster","prod-eu"],["namespace","payments"]]]',
        channel="#payments-oncall",
        labels=labels or (("cluster", "prod-eu"), ("namespace", "payments")),
        at=T0 + timedelta(minutes=18),
        project="acme-prod",
        total=1239,
        flow_count=4,
        other_count=0,
        nodes=("gke-a", "gke-b", "gke-c"),
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=17),
        top_flows=FLOWS[:3],
        more_flows=1,
        new_flows=(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def check_golden(name: str, message: SlackMessage) -> None:
    path = GOLDEN / f"{name}.json"
    rendered = json.dumps(message, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("NETLOG_UPDATE_GOLDEN"):
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run with NETLOG_UPDATE_GOLDEN=1 once and review it"
    assert rendered == path.read_text(encoding="utf-8")
    assert block_errors(message["blocks"]) == []


@pytest.mark.parametrize(
    ("name", "notification"),
    [
        ("alert_open", note("open", top_flows=FLOWS[:1], flow_count=1, more_flows=0, total=250)),
        ("alert_update", note("update", new_flows=FLOWS[2:3])),
        ("alert_resolve", note("resolve")),
    ],
)
def test_alert_golden(name: str, notification: Notification) -> None:
    check_golden(name, render_alert(notification))


def test_thread_reply_golden() -> None:
    check_golden("thread_reply", render_thread_reply(note("update"), FLOWS[1:3]))


def test_buttons_carry_stable_ids_and_a_logs_explorer_link() -> None:
    actions = next(b for b in render_alert(note("open"))["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        ids.OPEN_LOGS,
        ids.EXPLAIN,
        ids.MUTE_1H,
        ids.MUTE_24H,
    ]
    url = actions["elements"][0]["url"]
    assert url.startswith("https://console.cloud.google.com/logs/query;query=")
    assert "project=acme-prod" in url
    assert "policy-action" in url
    assert "timeRange=" in url


HOSTILE = "<!channel> *bold* _it_ ~s~ `tick` &amp; <https://evil.example|click>"


def test_hostile_names_cannot_ping_or_format() -> None:
    hostile = flow(HOSTILE, "payments/api", 80, 1, 1)
    message = render_alert(
        note("update", labels=(("cluster", HOSTILE), ("namespace", "<@U123>")), top_flows=(hostile,))
    )
    # The header and the "Why denied?" menu are plain_text, which Slack never formats or pings from.
    blocks = [b for b in message["blocks"] if b["type"] not in ("header", "actions")]
    mrkdwn = json.dumps(blocks, ensure_ascii=False)
    assert "<!channel>" not in mrkdwn
    assert "<@U123>" not in mrkdwn
    assert "<https://evil" not in mrkdwn
    assert "&lt;!channel&gt;" in mrkdwn
    assert "&amp;amp;" in mrkdwn  # a literal "&amp;" in a name shows as typed
    assert "ˋtickˋ" in mrkdwn  # a backtick cannot close the code span
    assert "<!channel>" not in message["text"]
    reply = render_thread_reply(note("update"), (hostile,))
    assert "<!channel>" not in json.dumps(reply)


def test_limits_are_kept_with_a_visible_marker() -> None:
    long = "x" * 250
    many = tuple(flow(f"ns/{long}-{n}", f"ns/{long}", 80, n, 1) for n in range(40))
    message = render_alert(
        note("update", labels=(("cluster", long), ("namespace", long)), top_flows=many, more_flows=960)
    )
    blocks = message["blocks"]
    assert block_errors(blocks) == []
    assert len(blocks) <= 50
    header = blocks[0]["text"]["text"]
    assert len(header) == HEADER_LIMIT
    assert header.endswith("(truncated)")
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert max(len(t) for t in sections) <= SECTION_LIMIT
    shown = sections[-1].count("\n")  # lines before the "+N more flows" line
    assert shown < 40
    assert sections[-1].endswith(f"_+{960 + 40 - shown:,} more flows_")
    reply = render_thread_reply(note("update"), many)
    assert block_errors(reply["blocks"]) == []
    body = reply["blocks"][0]["text"]["text"]
    assert body.endswith(f"_+{40 - body.count('• ')} more_")


def test_no_project_means_no_logs_button() -> None:
    actions = next(b for b in render_alert(note("open", project=""))["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [ids.EXPLAIN, ids.MUTE_1H, ids.MUTE_24H]


def test_why_denied_offers_each_shown_flow_with_its_cluster() -> None:
    message = render_alert(note("update"))
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    menu = next(e for e in actions["elements"] if e["action_id"] == ids.EXPLAIN)
    assert menu["type"] == "static_select"
    assert menu["placeholder"]["text"] == "Why denied?"
    shown = note("update").top_flows
    assert len(menu["options"]) == len(shown)
    for option, summary in zip(menu["options"], shown, strict=True):
        cluster, _, flow_text = option["value"].partition(ids.FLOW_SEPARATOR)
        assert cluster == summary.key.cluster
        assert flow_text == f"{summary.key.source} → {summary.key.destination}:{summary.key.port_label}"
        assert len(option["text"]["text"]) <= 75
        assert len(option["value"]) <= 150


def test_no_why_denied_for_flows_without_a_cluster() -> None:
    shown = flow("checkout/web", "payments/api", 80, 1, 1)
    nameless = FlowSummary(shown.key._replace(cluster=""), shown.count, shown.first_seen, shown.last_seen)
    message = render_alert(note("update", top_flows=(nameless,)))
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    assert ids.EXPLAIN not in [e["action_id"] for e in actions["elements"]]


def test_the_group_without_a_namespace_says_what_it_holds() -> None:
    message = render_alert(note("open", labels=(("cluster", "prod-eu"), ("namespace", ""))))
    blocks = message["blocks"]
    header = blocks[0]["text"]["text"]
    assert header == "Denied connections — prod-eu / no namespace (nodes, external addresses)"
    assert blocks[1]["fields"][1]["text"] == "*namespace*\n_no namespace (nodes, external addresses)_"
    actions = next(b for b in blocks if b["type"] == "actions")
    query = unquote(actions["elements"][0]["url"])
    # The link shows the denies of this group, not every deny of the cluster.
    assert "NOT jsonPayload.dest.pod_namespace:*" in query
    assert "NOT jsonPayload.src.pod_namespace:*" in query
