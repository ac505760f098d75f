"""The audit trail: one typed entry becomes a store row and, with an audit channel, a queued line;
each line is a sentence (who did what, where, what it was before), never the record's JSON or a
card's UUID, with every dynamic part escaped."""

from __future__ import annotations

import pytest

from bot.adapters.store import Store
from bot.core.audit import AuditEntry
from bot.core.outbox import AuditLine
from bot.render.audit import audit_message
from bot.services.audit import Auditor
from tests.clock import T0
from tests.services.support import OPERATOR, audit_rows

ENTRY = AuditEntry(
    T0, OPERATOR, "enable", "applied", "/netlog enable deny", "prod-eu", "deny: log=false", "deny: log=true"
)


def test_an_entry_is_a_row_and_an_audit_channel_line(store: Store) -> None:
    Auditor(store, "C0AUDIT").record(ENTRY)
    [row] = audit_rows(store)
    assert {
        k: row[k] for k in ("at", "user_id", "action", "result", "detail", "cluster", "before", "after")
    } == {
        "at": T0,
        "user_id": OPERATOR,
        "action": "enable",
        "result": "applied",
        "detail": "/netlog enable deny",
        "cluster": "prod-eu",
        "before": "deny: log=false",
        "after": "deny: log=true",
    }
    [line] = store.outbox.pending()
    assert (line.kind, line.channel) == ("audit_line", "C0AUDIT")
    assert line.group_id.startswith("audit-")
    assert isinstance(line.message, AuditLine)
    assert line.message.entry == ENTRY  # rendered only when delivery sends it
    rendered = audit_message(line.message.entry)
    assert rendered.text == (
        ":white_check_mark: <@U0OP> turned on deny logging on cluster `prod-eu`: now `log=true`, "
        "was `log=false` (`/netlog enable deny`)."
    )
    assert rendered.response_type == "in_channel"


def test_without_an_audit_channel_only_the_row_is_written(store: Store) -> None:
    Auditor(store, None).record(ENTRY)
    assert len(audit_rows(store)) == 1
    assert store.outbox.pending() == []


KEY = '["#payments",0,[["cluster","prod-eu"],["namespace","payments"]]]'
ANNOTATION = "policy.network.gke.io/enable-deny-logging"


@pytest.mark.parametrize(
    ("entry", "sentence"),
    [
        (
            AuditEntry(
                T0,
                "U1",
                "ns-logging",
                "applied",
                "/netlog ns pay on",
                "prod",
                f"pay: {ANNOTATION}=(none)",
                f"pay: {ANNOTATION}=true",
            ),
            ":white_check_mark: <@U1> annotated namespace `pay` on cluster `prod` for deny logging "
            "(`/netlog ns pay on`).",
        ),
        (
            AuditEntry(
                T0,
                "U1",
                "mute",
                "applied",
                "from an alert in C0PAY",
                after="#3 cluster=prod (one alert) for 1h",
            ),
            ":white_check_mark: <@U1> muted #3 `cluster=prod (one alert)` for 1h. "
            "Reason: from an alert in C0PAY.",
        ),
        (
            AuditEntry(T0, "U1", "unmute", "applied", "/netlog unmute 3", before="cluster=prod"),
            ":white_check_mark: <@U1> ended the mute `cluster=prod` early (`/netlog unmute 3`).",
        ),
        (
            AuditEntry(T0, "U2", "mute", "refused", f"button on {KEY}"),
            ":no_entry: <@U2> tried to mute the alert `cluster=prod-eu` `namespace=payments` with its Mute "
            "button: refused, not an operator.",
        ),
        (
            AuditEntry(T0, "U2", "apply", "refused", "card 0f3c9a2e-8d1b-4c55-9e0a-5b7f6d2c1e44"),
            ":no_entry: <@U2> tried to apply a change from a confirmation card: refused, not an operator.",
        ),
        (
            AuditEntry(T0, "U2", "disable", "refused", "/netlog disable deny prod"),
            ":no_entry: <@U2> tried to run `/netlog disable deny prod`: refused, not an operator.",
        ),
        (
            AuditEntry(T0, "U1", "enable", "failed", "the API server said 403 <!channel>", "prod"),
            ":x: <@U1> tried to run `/netlog enable` on cluster `prod`: it failed (the API server said 403 "
            "&lt;!channel&gt;).",
        ),
        (
            AuditEntry(
                T0, "U1", "digest-now", "applied", "digest of 2026-01-15 09:00–10:00 UTC posted in <#C0PAY>"
            ),
            ":white_check_mark: <@U1> posted the digest of 2026-01-15 09:00–10:00 UTC in <#C0PAY> now.",
        ),
    ],
    ids=lambda value: value.action if isinstance(value, AuditEntry) else "",
)
def test_an_audit_line_is_a_sentence(entry: AuditEntry, sentence: str) -> None:
    assert audit_message(entry).text == sentence


def test_hostile_text_in_an_audit_line_cannot_ping_or_format() -> None:
    hostile = "<!channel> *bold* <https://evil.example|x>"
    entry = AuditEntry(T0, "U1<!here>", "mute", "applied", hostile, hostile, after=f"#3 {hostile} for 1h")
    text = audit_message(entry).text
    assert "<!channel>" not in text
    assert "<!here>" not in text
    assert "<https://evil" not in text
