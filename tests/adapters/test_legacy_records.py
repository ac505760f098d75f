"""Schema-6 outbox rows and group records converted for the migration to schema revision 0007
(`bot.adapters.store.legacy_records`).

Old rows come two ways: literal rows a run of main ae4010f wrote (`legacy_rows.json`: demo traffic
through the grouping worker, delivery's thread follow-up, `/netlog` audit lines), and rows the
frozen ae4010f code (`legacy_codec.py`) writes for groups and notifications made here. A converted
row must decode to what the old code read back from it, and an old audit line must render to the
very text and blocks it carried. On both databases, rows converted in place are read by the store
as typed messages and groups, in their order.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.adapters.store import Store
from bot.adapters.store.legacy_records import upgrade_group_record, upgrade_outbox_row
from bot.adapters.store.records import decode_group, decode_message
from bot.core.audit import AuditEntry
from bot.core.events import Endpoint, PolicyEvent
from bot.core.grouping import Group, Grouper, GroupingPolicy, Notification
from bot.core.outbox import AlertEdit, AlertPost, AuditLine, OutboxMessage, ThreadReply
from bot.core.routing import Route, RoutingTable
from bot.render.audit import audit_message
from tests.adapters.legacy_codec import (
    audit_record,
    audit_text,
    group_from_record,
    group_to_record,
    notification_from_record,
    notification_to_record,
)
from tests.adapters.store_support import downgrade

ROWS = json.loads((Path(__file__).parent / "legacy_rows.json").read_text(encoding="utf-8"))
NEW_TYPES: dict[str, type[OutboxMessage]] = {
    "open": AlertPost,
    "repeat": AlertPost,
    "update": AlertEdit,
    "resolve": AlertEdit,
    "thread": ThreadReply,
    "audit": AuditLine,
}
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def upgraded(kind: str, record: dict[str, Any], created_at: datetime | None = None) -> OutboxMessage:
    new_kind, text = upgrade_outbox_row(kind, record, created_at)
    message = decode_message(text)
    assert new_kind == message.kind
    assert isinstance(message, NEW_TYPES[kind])
    assert (message.channel, message.group_id) == (record["channel"], record["group_id"])
    return message


def old_notification(kind: str, record: dict[str, Any]) -> Notification:
    """What the old bot read from the row; a thread row's kind was "thread", which no reply shows."""
    note = notification_from_record(record)
    return replace(note, kind="update") if kind == "thread" else note


def old_entry(entry: dict[str, Any]) -> AuditEntry:
    return AuditEntry(**{**entry, "at": datetime.fromisoformat(entry["at"])})


# -- rows of a real run ------------------------------------------------------------------------


def test_the_real_run_has_every_old_kind() -> None:
    assert {row["kind"] for row in ROWS["outbox"]} == set(NEW_TYPES)


@pytest.mark.parametrize("row", ROWS["outbox"], ids=lambda row: str(row["kind"]))
def test_an_outbox_row_of_a_real_run_keeps_its_message(row: dict[str, Any]) -> None:
    record = json.loads(row["record"])
    assert (record["channel"], record["group_id"]) == (row["channel"], row["group_id"])
    if row["kind"] == "audit":
        entry = old_entry(row["entry"])
        line = upgraded("audit", record, entry.at)
        assert isinstance(line, AuditLine)
        assert line.entry == entry
        assert line.group_id == row["group_id"]
        # The entry read back says what the line said (lines are sentences now, see bot.render.audit).
        assert audit_text(_fields(line.entry)) == record["message"]["text"]
    else:
        message = upgraded(row["kind"], record)
        assert isinstance(message, AlertPost | AlertEdit | ThreadReply)
        assert message.notification == old_notification(row["kind"], record)


@pytest.mark.parametrize("text", ROWS["groups"], ids=lambda text: json.loads(text)["key"][:40])
def test_a_group_record_of_a_real_run_keeps_its_group(text: str) -> None:
    record = json.loads(text)
    group = decode_group(upgrade_group_record(record))
    assert group == group_from_record(record)
    assert group.group_id == group_from_record(record).group_id  # the Slack message it owns


# -- rows the frozen old code writes ----------------------------------------------------------


def deny(at: datetime, source: str, port: int | None = 443, node: str = "n1") -> PolicyEvent:
    return PolicyEvent(
        insert_id=f"{source}-{at.isoformat()}-{port}",
        timestamp=at,
        direction="ingress",
        disposition="deny",
        protocol="tcp" if port else "icmp",
        src=Endpoint("pod", ip="10.0.0.1", namespace="checkout", workload=source),
        dest=Endpoint("pod", ip="10.0.0.2", namespace="payments", workload="api"),
        count=3,
        dest_port=port,
        cluster="prod-eu",
        project="acme",
        node=node,
    )


def history() -> tuple[list[Notification], list[Group]]:
    """Every notification of a group's life (open, updates with new flows, repeat, resolve) and
    copies of its state along the way, some past the flow-tracking cap."""
    policy = GroupingPolicy(repeat_interval=timedelta(minutes=10), max_flows_tracked=3)
    grouper = Grouper(policy, RoutingTable((Route((("namespace", "pay*"),), "#payments"),), "#netlog"))
    notes: list[Notification] = []
    groups: list[Group] = []
    for minute in range(0, 40):
        now = T0 + timedelta(minutes=minute)
        if minute < 20:
            grouper.fold(deny(now, f"w{minute % 5}", 443 if minute % 3 else None, f"n{minute % 2}"), now)
        notes.extend(grouper.tick(now))
        groups.extend(decode_group_via_old_code(group) for group in grouper.groups.values())
    assert {note.kind for note in notes} == {"open", "update", "repeat", "resolve"}
    assert any(note.new_flows for note in notes)
    assert any(group.other_count for group in groups)
    return notes, groups


def decode_group_via_old_code(group: Group) -> Group:
    return group_from_record(json.loads(json.dumps(group_to_record(group))))


def test_every_notification_the_old_code_queued_converts_to_the_same_notification() -> None:
    notes, _ = history()
    for note in notes:
        record = json.loads(json.dumps(notification_to_record(note)))
        message = upgraded(note.kind, record)
        assert isinstance(message, AlertPost | AlertEdit | ThreadReply)
        assert message.notification == note
        if note.new_flows:  # what delivery queued after sending it
            reply = upgraded("thread", {**record, "kind": "thread"})
            assert isinstance(reply, ThreadReply)
            assert reply.notification == replace(note, kind="update")


def test_every_group_state_the_old_code_saved_converts_to_the_same_group() -> None:
    _, groups = history()
    for group in groups:
        record = json.loads(json.dumps(group_to_record(group)))
        again = decode_group(upgrade_group_record(record))
        assert again == group == group_from_record(record)
        assert again.group_id == group.group_id


AUDIT_ENTRIES = [
    AuditEntry(T0, "U0OP", "enable", "applied", "/netlog enable prod-eu", "prod-eu", "off", "deny: log=true"),
    AuditEntry(T0, "U0X", "mute", "refused", 'button on ["#c",0,[]]'),
    AuditEntry(T0, "U0OP", "apply", "failed", "card 7: <!channel> & *bold* `x`", "prod-us: west"),
    AuditEntry(T0, "U0OP", "mute", "applied", "two\nlines <@U1>", None, None, "#3 ns=pay* for 1 h"),
    AuditEntry(T0, "U0OP", "unmute", "applied", "", None, "#3 ns=pay*", None),
]
LOSSY_AUDIT_ENTRIES = [  # the text cannot tell these from their look-alikes, which render the same
    AuditEntry(T0, "U0OP", "enable", "applied", "d", "c", "`quoted`", "-"),
    AuditEntry(T0, "U0OP", "enable", "applied", "d", "c", "", "on"),
    AuditEntry(T0, "U0OP", "ns-logging", "applied", "before: `a` → after: `b`"),
]


@pytest.mark.parametrize("entry", AUDIT_ENTRIES + LOSSY_AUDIT_ENTRIES)
def test_an_old_audit_line_reads_back_as_an_entry_saying_the_same(entry: AuditEntry) -> None:
    old = _fields(entry)
    record = json.loads(json.dumps(audit_record(old, "audit-5f0c"), ensure_ascii=False))
    line = upgraded("audit", record, entry.at)
    assert isinstance(line, AuditLine)
    assert line.id == "5f0c"
    assert audit_text(_fields(line.entry)) == audit_text(old) == record["message"]["text"]
    assert audit_message(line.entry).text  # and it is a line of today's audit channel
    if entry in AUDIT_ENTRIES:
        assert line.entry == entry


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in AuditEntry.__slots__}


def test_an_audit_line_without_its_row_time_still_converts() -> None:
    record = audit_record(_fields(AUDIT_ENTRIES[0]), "audit-1")
    line = upgraded("audit", record)
    assert isinstance(line, AuditLine)
    assert line.entry == replace(AUDIT_ENTRIES[0], at=datetime(1970, 1, 1, tzinfo=UTC))


def test_rows_already_converted_pass_through() -> None:
    notes, groups = history()
    kind, text = upgrade_outbox_row("update", notification_to_record(notes[1]))
    assert upgrade_outbox_row(kind, json.loads(text)) == (kind, text)
    new_group = upgrade_group_record(group_to_record(groups[-1]))
    assert decode_group(upgrade_group_record(json.loads(new_group))) == groups[-1]


def audit_row(text: str) -> dict[str, Any]:
    return {"channel": "#a", "group_id": "audit-1", "message": {"text": text, "blocks": []}}


@pytest.mark.parametrize(
    ("kind", "record", "error"),
    [
        ("digest", {"group_id": "g"}, "unknown kind 'digest'"),
        (
            "audit",
            {"channel": "#a", "group_id": "audit-1", "message": {"text": "hello"}},
            "not an audit line",
        ),
        (
            "audit",
            {"channel": "#a", "group_id": "audit-1", "message": {"text": ":x: <@U> `a`: exploded"}},
            "not an audit line",
        ),
    ],
)
def test_a_row_it_cannot_read_is_refused_with_a_sentence(
    kind: str, record: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        upgrade_outbox_row(kind, record)


# -- a database written by the old code --------------------------------------------------------


def test_a_database_written_by_the_old_code_reads_typed_after_revision_0007(store: Store) -> None:
    downgrade(store.db, "0006")  # the schema the old code wrote to
    with store.db.engine.begin() as conn:
        for row in ROWS["outbox"]:
            at = old_entry(row["entry"]).at if row["kind"] == "audit" else T0
            conn.execute(
                sa.text(
                    "INSERT INTO outbox (created_at, channel, group_id, kind, record) "
                    "VALUES (:at, :channel, :group_id, :kind, :record)"
                ),
                {
                    **{k: row[k] for k in ("channel", "group_id", "kind", "record")},
                    "at": at.replace(tzinfo=None),
                },
            )
        saved = {json.loads(text)["key"]: text for text in ROWS["groups"]}  # one state per group
        for key, text in saved.items():
            conn.execute(
                sa.text('INSERT INTO "groups" (key, record) VALUES (:key, :record)'),
                {"key": key, "record": text},
            )

    assert store.migrate() == "0011"  # through 0007, which rewrites them, to the head

    messages = [item.message for item in store.outbox.pending()]
    assert [type(message) for message in messages] == [NEW_TYPES[row["kind"]] for row in ROWS["outbox"]]
    for message, row in zip(messages, ROWS["outbox"], strict=True):
        record = json.loads(row["record"])
        if isinstance(message, AuditLine):
            assert message.entry == old_entry(row["entry"])
        else:
            assert isinstance(message, AlertPost | AlertEdit | ThreadReply)
            assert message.notification == old_notification(row["kind"], record)
    expected = {key: group_from_record(json.loads(text)) for key, text in saved.items()}
    assert len(expected) > 1
    assert {group.key: group for group in store.grouping.load()} == expected
