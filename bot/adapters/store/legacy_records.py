"""Outbox rows and group records as the store wrote them up to schema 6, converted to today's records.

These functions exist for the one-time data migration to schema revision 0007, which rewrites
every pending outbox row and every group record once; nothing else reads the old shapes. They are
pure (a row in, a row out) and accept rows already in the new shape unchanged, so running them
twice does no harm.

The old shapes: an outbox row's `kind` was the notification's kind ("open", "repeat", "update",
"resolve"), "thread" (a notification record whose `kind` was overwritten) or "audit" (an audit
line already rendered to `{"text", "blocks", "response_type"}`); a group record was one flat dict
with its flows as `[[key fields], [count, first, last, announced]]` pairs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, get_args

import orjson

from bot.adapters.store.records import decode_group, decode_message, encode_group, encode_message
from bot.core.audit import AuditEntry, AuditResult
from bot.core.grouping import FlowKey, FlowStats, FlowSummary, Group, Notification
from bot.core.outbox import AlertEdit, AlertPost, AuditLine, OutboxMessage, ThreadReply

MESSAGE_KINDS = frozenset({"alert_post", "alert_edit", "thread_reply", "audit_line"})
#: Shown for an audit line's time when the caller does not pass the row's `created_at`.
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)

_AUDIT_HEAD = re.compile(
    r"\S* <@(?P<user>[^>]*)> `(?P<action>[^`]*)`(?: on (?P<cluster>.+))?: (?P<result>\w+)"
)
_AUDIT_CHANGE = re.compile(r"before: `(?P<before>.*)` → after: `(?P<after>.*)`")
_AUDIT_RESULTS: dict[str, AuditResult] = {result: result for result in get_args(AuditResult)}


def upgrade_outbox_row(
    kind: str, record: dict[str, Any], created_at: datetime | None = None
) -> tuple[str, str]:
    """(kind column, record JSON) of a pending outbox row in today's shape. Pass the row's
    `created_at` for audit lines: it is their entry's time (one `now` wrote both)."""
    if kind in MESSAGE_KINDS:
        message = decode_message(orjson.dumps(record))
    else:
        message = _legacy_message(kind, record, created_at or UNKNOWN_TIME)
    return message.kind, encode_message(message)


def upgrade_group_record(record: dict[str, Any]) -> str:
    """The JSON of a group record as revision 0007 keeps it (header and flows as separate parts of
    one record), which revision 0008 then splits into a header row and flow rows."""
    if "group" in record:
        return encode_group(decode_group(orjson.dumps(record)))
    return encode_group(_legacy_group(record))


def _legacy_message(kind: str, record: dict[str, Any], created_at: datetime) -> OutboxMessage:
    if kind in ("open", "repeat"):
        return AlertPost(_legacy_notification(record))
    if kind in ("update", "resolve"):
        return AlertEdit(_legacy_notification(record))
    if kind == "thread":
        # The notification's own kind was overwritten with "thread"; a reply's text never shows it.
        return ThreadReply(_legacy_notification({**record, "kind": "update"}))
    if kind == "audit":
        entry = _audit_entry(record["message"]["text"], created_at)
        return AuditLine(record["channel"], record["group_id"].removeprefix("audit-"), entry)
    raise ValueError(f"an outbox row of unknown kind {kind!r} (group {record.get('group_id')!r})")


def _legacy_notification(record: dict[str, Any]) -> Notification:
    def flows(items: list[list[Any]]) -> tuple[FlowSummary, ...]:
        return tuple(
            FlowSummary(FlowKey(*key), count, datetime.fromisoformat(first), datetime.fromisoformat(last))
            for key, count, first, last in items
        )

    return Notification(
        kind=record["kind"],
        group_id=record["group_id"],
        group_key=record["group_key"],
        channel=record["channel"],
        labels=tuple((name, value) for name, value in record["labels"]),
        at=datetime.fromisoformat(record["at"]),
        project=record["project"],
        total=record["total"],
        flow_count=record["flow_count"],
        other_count=record["other_count"],
        nodes=tuple(record["nodes"]),
        first_seen=datetime.fromisoformat(record["first_seen"]),
        last_seen=datetime.fromisoformat(record["last_seen"]),
        top_flows=flows(record["top_flows"]),
        more_flows=record["more_flows"],
        new_flows=flows(record["new_flows"]),
    )


def _legacy_group(record: dict[str, Any]) -> Group:
    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    must = datetime.fromisoformat
    return Group(
        key=record["key"],
        channel=record["channel"],
        labels=tuple((name, value) for name, value in record["labels"]),
        started_at=must(record["started_at"]),
        first_seen=must(record["first_seen"]),
        last_seen=must(record["last_seen"]),
        last_activity=must(record["last_activity"]),
        project=record["project"],
        total=record["total"],
        other_count=record["other_count"],
        flows={
            FlowKey(*key): FlowStats(count, must(first), must(last), announced)
            for key, (count, first, last, announced) in record["flows"]
        },
        nodes=set(record["nodes"]),
        notified_at=when(record["notified_at"]),
        announced_at=when(record["announced_at"]),
        notified_total=record["notified_total"],
    )


def _audit_entry(text: str, at: datetime) -> AuditEntry:
    """Reads back the entry an old audit line was rendered from, so that rendering it again gives
    the same text. What the text cannot tell (a `-` for an empty side, a backtick shown as its
    look-alike) renders the same either way."""
    head, *rest = text.split("\n")
    match = _AUDIT_HEAD.fullmatch(head)
    result = _AUDIT_RESULTS.get(match["result"]) if match else None
    if match is None or result is None:
        raise ValueError(f"not an audit line this bot wrote: {head[:80]!r}")
    before = after = None
    change = _AUDIT_CHANGE.fullmatch(rest[0]) if rest else None
    if change is not None:
        before, after = _side(change["before"]), _side(change["after"])
        rest = rest[1:]
    cluster = match["cluster"]
    return AuditEntry(
        at=at,
        user_id=_unescape(match["user"]),
        action=_unescape(match["action"]),
        result=result,
        detail=_unescape("\n".join(rest)),
        cluster=_unescape(cluster) if cluster else None,
        before=before,
        after=after,
    )


def _side(value: str) -> str | None:
    return None if value == "-" else _unescape(value)


def _unescape(value: str) -> str:
    """The reverse of `render.blocks.escape`."""
    return value.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
