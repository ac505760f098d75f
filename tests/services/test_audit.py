"""The audit trail: one typed entry becomes a store row and, with an audit channel, a queued line."""

from __future__ import annotations

from bot.adapters.store import Store
from bot.core.audit import AuditEntry
from bot.core.outbox import AuditLine
from bot.render.replies import audit_message
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
        ":white_check_mark: <@U0OP> `enable` on prod-eu: applied\n"
        "before: `deny: log=false` → after: `deny: log=true`\n/netlog enable deny"
    )
    assert rendered.response_type == "in_channel"


def test_without_an_audit_channel_only_the_row_is_written(store: Store) -> None:
    Auditor(store, None).record(ENTRY)
    assert len(audit_rows(store)) == 1
    assert store.outbox.pending() == []
