"""The store's record code as it was at main ae4010f (schema 6), frozen: it writes rows exactly as
the bot wrote them before schema revision 0007, so the legacy conversions are tested against the
real old shapes, and reads them back as the old bot did."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.core.grouping import FlowKey, FlowStats, FlowSummary, Group, Notification
from bot.render.blocks import SECTION_LIMIT, clip, code, escape


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}


def audit_record(entry: dict[str, Any], group_id: str) -> dict[str, Any]:
    """The outbox record `Operations.audit` queued: the line rendered at once, with `asdict(Reply)`."""
    text = audit_text(entry)
    message = {"text": text, "blocks": [_section(text)], "response_type": "in_channel"}
    return {"kind": "audit", "channel": "#netlog-audit", "group_id": group_id, "message": message}


def audit_text(entry: dict[str, Any]) -> str:
    """`replies.audit_message(entry).text` at ae4010f."""
    icon = {"applied": ":white_check_mark:", "refused": ":no_entry:", "failed": ":x:"}.get(
        entry["result"], ""
    )
    where = f" on {escape(entry['cluster'])}" if entry.get("cluster") else ""
    lines = [f"{icon} <@{escape(entry['user_id'])}> `{escape(entry['action'])}`{where}: {entry['result']}"]
    if entry.get("before") or entry.get("after"):
        lines.append(f"before: {code(entry.get('before') or '-')} → after: {code(entry.get('after') or '-')}")
    if entry.get("detail"):
        lines.append(escape(str(entry["detail"])))
    return "\n".join(lines)


def group_to_record(group: Group) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "key": group.key,
        "channel": group.channel,
        "labels": [list(pair) for pair in group.labels],
        "started_at": when(group.started_at),
        "first_seen": when(group.first_seen),
        "last_seen": when(group.last_seen),
        "last_activity": when(group.last_activity),
        "project": group.project,
        "total": group.total,
        "other_count": group.other_count,
        "flows": [
            [
                [k.cluster, k.direction, k.source, k.destination, k.dest_port, k.protocol],
                [s.count, when(s.first_seen), when(s.last_seen), s.announced],
            ]
            for k, s in group.flows.items()
        ],
        "nodes": sorted(group.nodes),
        "notified_at": when(group.notified_at),
        "announced_at": when(group.announced_at),
        "notified_total": group.notified_total,
    }


def group_from_record(record: Mapping[str, Any]) -> Group:
    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    def must(value: str) -> datetime:
        return datetime.fromisoformat(value)

    flows = {
        FlowKey(*key): FlowStats(count, must(first), must(last), announced)
        for key, (count, first, last, announced) in record["flows"]
    }
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
        flows=flows,
        nodes=set(record["nodes"]),
        notified_at=when(record["notified_at"]),
        announced_at=when(record["announced_at"]),
        notified_total=record["notified_total"],
    )


def notification_to_record(note: Notification) -> dict[str, Any]:
    """A JSON-ready dict for the outbox; `notification_from_record` reverses it."""

    def flows(items: tuple[FlowSummary, ...]) -> list[list[Any]]:
        return [
            [
                [
                    f.key.cluster,
                    f.key.direction,
                    f.key.source,
                    f.key.destination,
                    f.key.dest_port,
                    f.key.protocol,
                ],
                f.count,
                f.first_seen.isoformat(),
                f.last_seen.isoformat(),
            ]
            for f in items
        ]

    return {
        "kind": note.kind,
        "group_id": note.group_id,
        "group_key": note.group_key,
        "channel": note.channel,
        "labels": [list(pair) for pair in note.labels],
        "at": note.at.isoformat(),
        "project": note.project,
        "total": note.total,
        "flow_count": note.flow_count,
        "other_count": note.other_count,
        "nodes": list(note.nodes),
        "first_seen": note.first_seen.isoformat(),
        "last_seen": note.last_seen.isoformat(),
        "top_flows": flows(note.top_flows),
        "more_flows": note.more_flows,
        "new_flows": flows(note.new_flows),
    }


def notification_from_record(record: Mapping[str, Any]) -> Notification:
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
