"""The JSON the store keeps for core objects: outbox messages, alert groups and events.

Outbox messages go through pydantic, which reads and writes the core's dataclasses as they are
declared (the core itself stays free of it); an outbox message is one record whose `kind` says which
message it is. A group is stored as its header (one record: written with orjson, for speed, and
read by pydantic) and its flows (one row each, see `flow_row`), so a commit writes only the flows
that changed; `encode_group`/`decode_group` are the whole-group record of revision 0007, which
revision 0008 splits.

Events keep a hand-written pair: the `events` table is the largest, its rows are never rewritten,
and pydantic would write a different shape (`Z` for `+00:00`, every null of an endpoint, policies
as objects) unless a Python serializer ran per field, which costs more than this pair. Grouping
reads every stored event back, so `decode_event` has msgspec read the record straight into typed
structs; a record it cannot read that way goes through `event_from_record`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from sys import intern
from typing import Annotated, Any, Literal

import msgspec
import orjson
from pydantic import Field, TypeAdapter

from bot.core.events import ENDPOINT_FIELDS, Direction, Endpoint, Policy, PolicyEvent
from bot.core.grouping import FlowKey, FlowStats, Group
from bot.core.outbox import OutboxMessage


@dataclass(frozen=True, slots=True)
class FlowKeyRecord:
    """A flow key as revision 0007 wrote it: an object (FlowKey was a dataclass then)."""

    cluster: str
    direction: str
    source: str
    destination: str
    dest_port: int | None
    protocol: str


@dataclass(frozen=True, slots=True)
class GroupRecord:
    group: Group  # the header: stored without its `flows`, which are the part below
    flows: list[tuple[FlowKeyRecord, FlowStats]]


_MESSAGE: TypeAdapter[OutboxMessage] = TypeAdapter(Annotated[OutboxMessage, Field(discriminator="kind")])
_GROUP_RECORD = TypeAdapter(GroupRecord)
_HEADER_ONLY = {"group": {"flows"}}
_GROUP = TypeAdapter(Group)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    """A time as the store keeps it in integer columns: microseconds since the epoch, UTC."""
    # The timedelta's parts, not `// timedelta(microseconds=1)`: half the cost, and a storm's
    # commit converts tens of thousands of flow and history times.
    since = moment - _EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def encode_message(message: OutboxMessage) -> str:
    return _MESSAGE.dump_json(message).decode()


def decode_message(text: str | bytes) -> OutboxMessage:
    return _MESSAGE.validate_json(text)


def encode_group(group: Group) -> str:
    flows = [(FlowKeyRecord(*flow), stats) for flow, stats in group.flows.items()]
    record = GroupRecord(group, flows)
    return _GROUP_RECORD.dump_json(record, exclude=_HEADER_ONLY).decode()


def decode_group(text: str | bytes) -> Group:
    record = _GROUP_RECORD.validate_json(text)
    record.group.flows = {FlowKey(*astuple(flow)): stats for flow, stats in record.flows}
    return record.group


def encode_group_header(group: Group) -> str:
    """The group without its flows (they are rows of their own). Written by hand: a storm saves
    thousands of headers per step, and pydantic's dump costs several times orjson's; the shape is
    what `decode_group_header` (pydantic) reads, and the tests hold the two to a round trip."""
    return orjson.dumps(
        {
            "key": group.key,
            "channel": group.channel,
            "labels": group.labels,
            "started_at": group.started_at,
            "first_seen": group.first_seen,
            "last_seen": group.last_seen,
            "last_activity": group.last_activity,
            "project": group.project,
            "total": group.total,
            "other_count": group.other_count,
            "nodes": sorted(group.nodes),
            "notified_at": group.notified_at,
            "announced_at": group.announced_at,
            "notified_total": group.notified_total,
        }
    ).decode()


def decode_group_header(text: str | bytes) -> Group:
    return _GROUP.validate_json(text)


def encode_flow_key(flow: FlowKey) -> str:
    """A flow's identity within its group, as the `group_flows` key column holds it."""
    return orjson.dumps(
        [flow.cluster, flow.direction, flow.source, flow.destination, flow.dest_port, flow.protocol]
    ).decode()


def decode_flow_key(text: str | bytes) -> FlowKey:
    cluster, direction, source, destination, dest_port, protocol = orjson.loads(text)
    return FlowKey(cluster, direction, source, destination, dest_port, protocol)


#: The columns of a `group_flows` row, in the order `flow_row` gives them.
FLOW_COLUMNS = ("group_key", "flow", "count", "first_seen", "last_seen", "announced")


def flow_row(group_key: str, flow: FlowKey, stats: FlowStats) -> tuple[str, str, int, int, int, bool]:
    """One `group_flows` row (see FLOW_COLUMNS): times as integer microseconds since the epoch, UTC."""
    return (
        group_key,
        encode_flow_key(flow),
        stats.count,
        micros(stats.first_seen),
        micros(stats.last_seen),
        stats.announced,
    )


def flow_from_row(
    flow: str, count: int, first_seen: int, last_seen: int, announced: bool
) -> tuple[FlowKey, FlowStats]:
    stats = FlowStats(
        count,
        from_micros(first_seen),
        from_micros(last_seen),
        bool(announced),
    )
    return decode_flow_key(flow), stats


def event_to_record(event: PolicyEvent) -> dict[str, Any]:
    """A JSON-ready dict of the event, for the store; `event_from_record` reverses it."""
    return _record(event, _endpoint_record)


def encode_event(event: PolicyEvent) -> str:
    """`dumps(event_to_record(event))`, the same text, with each endpoint's JSON written once per
    endpoint: a storm's events share a few thousand endpoint objects between them."""
    return orjson.dumps(_record(event, _endpoint_json)).decode()


def _record(event: PolicyEvent, endpoint: Callable[[Endpoint], object]) -> dict[str, Any]:
    return {
        "insert_id": event.insert_id,
        "timestamp": event.timestamp.isoformat(),
        "direction": event.direction,
        "disposition": event.disposition,
        "protocol": event.protocol,
        "src": endpoint(event.src),
        "dest": endpoint(event.dest),
        "count": event.count,
        "src_port": event.src_port,
        "dest_port": event.dest_port,
        "cluster": event.cluster,
        "location": event.location,
        "project": event.project,
        "node": event.node,
        "policies": [[p.kind, p.name, p.namespace] for p in event.policies],
    }


#: Endpoints' JSON by the endpoint's id, with the endpoint itself: an id is reused once its object
#: is gone, and holding it keeps it from going while it is a key. Small: a storm's hot endpoints
#: fill it, and a bigger memo would keep cold endpoints alive (replay's peak memory grew by a
#: tenth with 100,000 of them, for no more speed).
_ENDPOINT_JSON: dict[int, tuple[Endpoint, orjson.Fragment]] = {}
ENDPOINT_JSON_SIZE = 10_000


def _endpoint_json(endpoint: Endpoint) -> orjson.Fragment:
    known = _ENDPOINT_JSON.get(id(endpoint))
    if known is not None and known[0] is endpoint:
        return known[1]
    if len(_ENDPOINT_JSON) >= ENDPOINT_JSON_SIZE:
        _ENDPOINT_JSON.clear()
    # As text: orjson's bytes keep the 4 kB buffer they were written in, 25 times this JSON's size.
    fragment = orjson.Fragment(orjson.dumps(_endpoint_record(endpoint)).decode())
    _ENDPOINT_JSON[id(endpoint)] = (endpoint, fragment)
    return fragment


def event_from_record(record: Mapping[str, Any]) -> PolicyEvent:
    policies = record["policies"]
    cluster, location, project, node = (
        record["cluster"],
        record["location"],
        record["project"],
        record["node"],
    )
    # Positional: grouping catch-up decodes every stored event, and keywords cost a third more.
    # Interned: each tracked flow and group keeps these, and the decoder makes a copy per event.
    return PolicyEvent(
        record["insert_id"],
        datetime.fromisoformat(record["timestamp"]),
        _DIRECTIONS[record["direction"]],
        intern(record["disposition"]),
        intern(record["protocol"]),
        _endpoint(record["src"]),
        _endpoint(record["dest"]),
        record["count"],
        record["src_port"],
        record["dest_port"],
        intern(cluster) if cluster else cluster,
        intern(location) if location else location,
        intern(project) if project else project,
        intern(node) if node else node,
        tuple(Policy(kind, name, namespace) for kind, name, namespace in policies) if policies else (),
    )


#: Endpoints decoded, by their stored fields. In a storm a few thousand pods, nodes and addresses
#: stand for most events, and an `Endpoint` is immutable: decoded once, shared by every event.
_ENDPOINTS: dict[tuple[Any, ...], Endpoint] = {}
_DIRECTIONS: dict[str, Direction] = {"ingress": "ingress", "egress": "egress"}
#: As many as the parser's memos keep (`EntryParser.memo_size`): a storm's working set of pods,
#: nodes and addresses fits both, and a memo cleared while still needed builds them all again.
ENDPOINT_CACHE_SIZE = 100_000


def _endpoint(record: Mapping[str, Any]) -> Endpoint:
    key = tuple(map(record.get, ENDPOINT_FIELDS))  # flat: a third of the memory of its items
    endpoint = _ENDPOINTS.get(key)
    if endpoint is None:
        if len(_ENDPOINTS) >= ENDPOINT_CACHE_SIZE:
            _ENDPOINTS.clear()
        endpoint = _ENDPOINTS[key] = Endpoint(**record)
    return endpoint


def _endpoint_record(endpoint: Endpoint) -> dict[str, Any]:
    return {key: value for key in ENDPOINT_FIELDS if (value := getattr(endpoint, key)) is not None}


class _EndpointRecord(msgspec.Struct, gc=False):
    """An endpoint as `_endpoint_record` writes it."""

    kind: Literal["pod", "node", "ip"]
    ip: str | None = None
    namespace: str | None = None
    pod: str | None = None
    workload: str | None = None
    workload_kind: str | None = None
    node: str | None = None
    network: str | None = None


class _EventRecord(msgspec.Struct, gc=False):
    """An event as `event_to_record` writes it. Literal values decode to one shared string each.
    The endpoints are left as their JSON bytes: they key the endpoint memo, so a storm's few
    thousand pods, nodes and addresses are decoded once each, not twice per event."""

    insert_id: str
    timestamp: datetime
    direction: Literal["ingress", "egress"]
    disposition: Literal["allow", "deny"]
    protocol: Literal["tcp", "udp", "icmp", "unknown"]
    src: msgspec.Raw
    dest: msgspec.Raw
    count: int
    src_port: int | None
    dest_port: int | None
    cluster: str | None
    location: str | None
    project: str | None
    node: str | None
    policies: list[tuple[str | None, str | None, str | None]]


_decode_event_record = msgspec.json.Decoder(_EventRecord).decode
_decode_endpoint_record = msgspec.json.Decoder(_EndpointRecord).decode
#: Endpoints decoded, by their stored bytes (the encoder writes an endpoint's fields in one order,
#: so equal endpoints are equal bytes).
_ENDPOINT_RECORDS: dict[bytes, Endpoint] = {}
_Site = tuple[str | None, str | None, str | None, str | None]
#: (cluster, location, project, node), interned. A few hundred in practice; bounded like the
#: endpoints all the same.
_SITES: dict[_Site, _Site] = {}


def decode_event(text: str | bytes) -> PolicyEvent:
    """A stored event record -> `PolicyEvent`, equal to `event_from_record(orjson.loads(text))`."""
    try:
        record = _decode_event_record(text)
        src, dest = _endpoint_of(record.src), _endpoint_of(record.dest)
    except msgspec.DecodeError:
        return event_from_record(orjson.loads(text))
    # Interned, once per distinct site: each tracked flow and group keeps these.
    site: _Site = (record.cluster, record.location, record.project, record.node)
    known = _SITES.get(site)
    if known is None:
        if len(_SITES) >= ENDPOINT_CACHE_SIZE:
            _SITES.clear()
        cluster, location, project, node = site
        known = _SITES[site] = (
            intern(cluster) if cluster else cluster,
            intern(location) if location else location,
            intern(project) if project else project,
            intern(node) if node else node,
        )
    policies = record.policies
    return PolicyEvent(
        record.insert_id,
        record.timestamp,
        record.direction,
        record.disposition,
        record.protocol,
        src,
        dest,
        record.count,
        record.src_port,
        record.dest_port,
        *known,
        tuple(Policy(kind, name, namespace) for kind, name, namespace in policies) if policies else (),
    )


def _endpoint_of(raw: msgspec.Raw) -> Endpoint:
    text = bytes(raw)
    endpoint = _ENDPOINT_RECORDS.get(text)
    if endpoint is None:
        if len(_ENDPOINT_RECORDS) >= ENDPOINT_CACHE_SIZE:
            _ENDPOINT_RECORDS.clear()
        record = _decode_endpoint_record(text)
        # Interned, as the parser's: they repeat across thousands of endpoints.
        namespace, workload, kind, node = record.namespace, record.workload, record.workload_kind, record.node
        endpoint = _ENDPOINT_RECORDS[text] = Endpoint(
            record.kind,
            record.ip,
            intern(namespace) if namespace else namespace,
            record.pod,
            intern(workload) if workload else workload,
            intern(kind) if kind else kind,
            intern(node) if node else node,
            record.network,
        )
    return endpoint
