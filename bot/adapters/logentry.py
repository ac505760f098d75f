"""GKE's policy-action LogEntry read by msgspec straight into typed structs: the parser's fast path
for the entries a storm is made of.

`FastEntryParser.parse` decodes a message body with a decoder that knows the few fields the bot
reads and skips the rest without building them (cheaper than `orjson.loads`, which builds every
dict and string of the entry). It takes an entry only when it can read it exactly as
`EntryParser` would: plain ASCII, a few kilobytes at most, canonical values (`ingress`, `deny`,
`tcp`, a count from 1, ports from 1). Anything else -- a push envelope, an unusual value, a decode
error -- goes to `EntryParser.parse`, which accepts it or says why not in the words it always has.
So both paths accept the same entries and give equal events; the tests hold them to that.

Why the limits: msgspec skips unknown fields without checking what the standard library checks
there (UTF-8 inside a string it skips, numbers past Python's 4,300-digit limit), and those
entries are rejected as `not_json` by the full path. ASCII text has no UTF-8 to check (and no
lone surrogate: msgspec refuses a `\\ud800` escape wherever it is), and a 4,300-digit number does
not fit in the size limit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from bot.core.events import (
    MAX_COUNT,
    MAX_INSERT_ID,
    Endpoint,
    EntryParser,
    Policy,
    PolicyEvent,
    RejectedEntry,
    name_endpoint,
)

#: Larger bodies take the full path (see the module's docstring); GKE's entries are ~0.8-1.5 kB.
FAST_MAX_BYTES = 4_096


class _Side(msgspec.Struct, gc=False):
    """`jsonPayload.src` / `dest`: exactly the fields `name_endpoint` reads. Decoded only when its
    text is not in the endpoint memo: a storm repeats the same few thousand sides, and looking one
    up by its bytes costs less than building its strings."""

    pod_name: str | None = None
    namespace: str | None = None
    pod_namespace: str | None = None
    workload_name: str | None = None
    workload_kind: str | None = None
    node_name: str | None = None
    instance: str | None = None


#: What the fast path takes as is; any other value fails the decode and goes the full way (which
#: normalizes `TCP`, reads a port of 0 as none, or refuses the entry in its own words).
_Port = Annotated[int, msgspec.Meta(ge=1, le=65_535)]
_Count = Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)]
_InsertId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_INSERT_ID)]


_NULL = msgspec.Raw(b"null")
_fromisoformat = datetime.fromisoformat


class _Connection(msgspec.Struct, gc=False):
    # Literal values decode to the one string in the type (shared by every event and flow).
    direction: Literal["ingress", "egress"]
    protocol: Literal["tcp", "udp", "icmp", "unknown"]
    src_ip: str | None = None
    dest_ip: str | None = None
    src_port: _Port | None = None
    dest_port: _Port | None = None


class _Policy(msgspec.Struct, gc=False):
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None


class _Payload(msgspec.Struct, gc=False):
    connection: _Connection
    disposition: Literal["allow", "deny"]
    count: _Count = 1
    src: msgspec.Raw = _NULL
    dest: msgspec.Raw = _NULL
    node_name: str | None = None
    timestamp: str | None = None
    policies: list[_Policy] | None = None


class _Labels(msgspec.Struct, gc=False):
    """`resource.labels`, decoded only when the resource's text is not in the site memo."""

    cluster_name: str | None = None
    location: str | None = None
    project_id: str | None = None
    node_name: str | None = None


class _Resource(msgspec.Struct, gc=False):
    labels: _Labels | None = None


class _Entry(msgspec.Struct, gc=False):
    payload: _Payload = msgspec.field(name="jsonPayload")
    insert_id: _InsertId = msgspec.field(name="insertId")
    log_name: str | None = msgspec.field(default=None, name="logName")
    timestamp: str | None = None
    #: Read by its text, as the sides are: a storm repeats the same few hundred resources.
    resource: msgspec.Raw = _NULL
    #: A push envelope's `message`: such documents are unwrapped by the full path.
    message: Any = None


_Site = tuple[str | None, str | None, str | None, str | None]


class FastEntryParser(EntryParser):
    """`EntryParser` with the msgspec fast path in front; the same answers for every input."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._decode = msgspec.json.Decoder(_Entry).decode
        self._decode_side = msgspec.json.Decoder(_Side | None).decode
        self._decode_resource = msgspec.json.Decoder(_Resource | None).decode
        self._sides: dict[tuple[str | None, bytes], Endpoint] = {}
        self._fast_sites: dict[tuple[str | None, bytes], _Site] = {}

    def parse(self, data: bytes) -> PolicyEvent:
        if len(data) <= FAST_MAX_BYTES and data.isascii():
            try:
                event = self._read(self._decode(data))
            except (msgspec.DecodeError, RecursionError):
                event = None  # the full path says what is wrong, or reads what msgspec would not
            if event is not None:
                return event
        return super().parse(data)

    def _read(self, entry: _Entry) -> PolicyEvent | None:
        """The event, or None (or msgspec's DecodeError) when the full path must decide."""
        # A logName the full path has accepted before; the first of each goes that way.
        if entry.log_name not in self._log_names or entry.message is not None:
            return None
        payload = entry.payload
        connection = payload.connection
        # This is run for every line of a storm: the memos are read here, and only what they
        # do not hold costs a call.
        raw = entry.timestamp or payload.timestamp
        if (
            raw is not None
            and len(raw) > 20
            and raw[-1] == "Z"
            and raw[19] == "."
            and raw[:19] in self._seconds
            and raw[20:-1].isdigit()  # ASCII: `parse` takes ASCII bodies only
        ):
            timestamp = _fromisoformat(raw)  # what `_stamp` answers for a second it knows
        else:
            try:
                timestamp = self._stamp(raw)
            except RejectedEntry:
                return None
        site_key = (payload.node_name, bytes(entry.resource))
        site = self._fast_sites.get(site_key)
        if site is None:
            site = self._site_of(site_key)
        src_key, dest_key = (
            (connection.src_ip or None, bytes(payload.src)),
            (connection.dest_ip or None, bytes(payload.dest)),
        )
        # A side that is not an object raises in `_side`, and `parse` takes the full path.
        sides = self._sides
        src = sides.get(src_key) or self._side(src_key)
        dest = sides.get(dest_key) or self._side(dest_key)
        policies = payload.policies
        return PolicyEvent(
            entry.insert_id,
            timestamp,
            connection.direction,
            payload.disposition,
            connection.protocol,
            src,
            dest,
            payload.count,
            connection.src_port,
            connection.dest_port,
            *site,
            tuple(Policy(p.kind or None, p.name or None, p.namespace or None) for p in policies)
            if policies
            else (),
        )

    def _side(self, key: tuple[str | None, bytes]) -> Endpoint:
        """The endpoint for a side's (IP, JSON text), remembered. Raises msgspec's ValidationError
        when the text is not a side object (the full path then says what is wrong)."""
        ip, text = key
        side = self._decode_side(text)
        if side is None:
            endpoint = name_endpoint(ip, None, None, None, None, None, None, None, self.networks)
        else:
            endpoint = name_endpoint(
                ip,
                side.pod_name,
                side.namespace,
                side.pod_namespace,
                side.workload_name,
                side.workload_kind,
                side.node_name,
                side.instance,
                self.networks,
            )
        self._remember(self._sides, key, endpoint)
        return endpoint

    def _site_of(self, key: tuple[str | None, bytes]) -> _Site:
        """(cluster, location, project, node) for (`jsonPayload.node_name`, the resource's text), as
        the full path's `_site` reads them, remembered. Raises msgspec's ValidationError when the
        resource is not an object with an object of strings for labels."""
        node, text = key
        resource = self._decode_resource(text)
        labels = resource.labels if resource is not None else None
        if labels is None:
            site: _Site = (None, None, None, node or None)
        else:
            site = (
                labels.cluster_name or None,
                labels.location or None,
                labels.project_id or None,
                node or labels.node_name or None,
            )
        self._remember(self._fast_sites, key, site)
        return site
