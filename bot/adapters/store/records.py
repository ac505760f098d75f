"""The JSON the store keeps for core objects: outbox messages, alert groups and events.

Outbox messages and groups go through pydantic, which reads and writes the core's dataclasses as
they are declared (the core itself stays free of it). An outbox message is one record whose `kind`
says which message it is. A group record keeps the group's header and its flows as separate parts,
so a later schema can store the flows apart and write only those that changed.

Events keep a hand-written pair: the `events` table is the largest, its rows are never rewritten,
and pydantic would write a different shape (`Z` for `+00:00`, every null of an endpoint, policies
as objects) unless a Python serializer ran per field, which costs more than this pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from bot.core.events import Endpoint, Policy, PolicyEvent
from bot.core.grouping import FlowKey, FlowStats, Group
from bot.core.outbox import OutboxMessage


@dataclass(frozen=True, slots=True)
class GroupRecord:
    group: Group  # the header: stored without its `flows`, which are the part below
    flows: list[tuple[FlowKey, FlowStats]]


_MESSAGE: TypeAdapter[OutboxMessage] = TypeAdapter(Annotated[OutboxMessage, Field(discriminator="kind")])
_GROUP_RECORD = TypeAdapter(GroupRecord)
_HEADER_ONLY = {"group": {"flows"}}


def encode_message(message: OutboxMessage) -> str:
    return _MESSAGE.dump_json(message).decode()


def decode_message(text: str | bytes) -> OutboxMessage:
    return _MESSAGE.validate_json(text)


def encode_group(group: Group) -> str:
    record = GroupRecord(group, list(group.flows.items()))
    return _GROUP_RECORD.dump_json(record, exclude=_HEADER_ONLY).decode()


def decode_group(text: str | bytes) -> Group:
    record = _GROUP_RECORD.validate_json(text)
    record.group.flows = dict(record.flows)
    return record.group


def event_to_record(event: PolicyEvent) -> dict[str, Any]:
    """A JSON-ready dict of the event, for the store; `event_from_record` reverses it."""
    return {
        "insert_id": event.insert_id,
        "timestamp": event.timestamp.isoformat(),
        "direction": event.direction,
        "disposition": event.disposition,
        "protocol": event.protocol,
        "src": _endpoint_record(event.src),
        "dest": _endpoint_record(event.dest),
        "count": event.count,
        "src_port": event.src_port,
        "dest_port": event.dest_port,
        "cluster": event.cluster,
        "location": event.location,
        "project": event.project,
        "node": event.node,
        "policies": [[p.kind, p.name, p.namespace] for p in event.policies],
    }


def event_from_record(record: Mapping[str, Any]) -> PolicyEvent:
    return PolicyEvent(
        insert_id=record["insert_id"],
        timestamp=datetime.fromisoformat(record["timestamp"]),
        direction=record["direction"],
        disposition=record["disposition"],
        protocol=record["protocol"],
        src=Endpoint(**record["src"]),
        dest=Endpoint(**record["dest"]),
        count=record["count"],
        src_port=record["src_port"],
        dest_port=record["dest_port"],
        cluster=record["cluster"],
        location=record["location"],
        project=record["project"],
        node=record["node"],
        policies=tuple(Policy(kind, name, namespace) for kind, name, namespace in record["policies"]),
    )


def _endpoint_record(endpoint: Endpoint) -> dict[str, Any]:
    return {key: value for key in Endpoint.__slots__ if (value := getattr(endpoint, key)) is not None}
