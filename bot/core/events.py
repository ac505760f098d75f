"""A Pub/Sub message carrying a `policy-action` LogEntry -> `PolicyEvent`.

Field names follow GKE's policy logger (see the reference doc in shared/reference). Two payload
formats exist in the wild, so every nested field is optional; only a missing or mistyped
`connection` makes an entry unusable. Anything that cannot become an event raises `RejectedEntry`
with a code (for counting) and a sentence (for people); the caller stores it for inspection.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from sys import intern
from typing import Any, Literal

POLICY_ACTION_LOG = "policy-action"
KNOWN_PROTOCOLS = frozenset({"tcp", "udp", "icmp", "unknown"})
#: The usual spellings, each to its one shared string.
_PROTOCOLS = {name: name for name in KNOWN_PROTOCOLS}
#: Cloud Logging's ids are ~20 characters; anything far longer is not one (and would not fit the index).
MAX_INSERT_ID = 255
#: GKE folds 5 s of one flow's denies into `count`; anything past a 32-bit integer is not real.
MAX_COUNT = 2**31 - 1

EndpointKind = Literal["pod", "node", "ip"]
Direction = Literal["ingress", "egress"]


class RejectedEntry(ValueError):
    """A message that is not a usable policy-action entry. `code` is stable, `reason` is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A message body as it arrived (Pub/Sub, a file line), before parsing."""

    data: bytes
    message_id: str | None = None


@dataclass(slots=True, unsafe_hash=True)
class Endpoint:
    """One side of a flow: a pod (with its workload), a node, or a bare IP (named via `networks`).
    Treat it as immutable (it is hashed, and shared by every event of its pod): it is not declared
    frozen only because a storm names tens of thousands of them, and a frozen dataclass costs
    twice as much to build."""

    kind: EndpointKind
    ip: str | None = None
    namespace: str | None = None
    pod: str | None = None
    workload: str | None = None
    workload_kind: str | None = None
    node: str | None = None
    network: str | None = None
    #: A short, stable name for grouping and display: `payments/api`, `node/gke-…`,
    #: `metadata-server`. Worked out once: every fold and route reads it, and endpoints are shared.
    label: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.label = self._label()

    def _label(self) -> str:
        if self.kind == "pod":
            return f"{self.namespace or '?'}/{self.workload or self.pod or self.ip or '?'}"
        if self.kind == "node":
            return f"node/{self.node or self.ip or '?'}"
        if self.network:
            return f"{self.network} ({self.ip})" if self.network != self.ip else self.network
        return self.ip or "?"


#: What makes an endpoint (its label is derived): the fields a stored event keeps.
ENDPOINT_FIELDS = ("kind", "ip", "namespace", "pod", "workload", "workload_kind", "node", "network")


@dataclass(frozen=True, slots=True)
class Policy:
    kind: str | None
    name: str | None
    namespace: str | None


@dataclass(slots=True)
class PolicyEvent:
    """One policy-action log line, a deny or an allow (which may stand for `count` folded attempts).
    Only denies alert; allows are stored as they came. Treat it as immutable: it is not declared
    frozen only because a frozen dataclass costs six times as much to build (one
    `object.__setattr__` per field), and a storm builds one per log line."""

    insert_id: str
    timestamp: datetime
    direction: Direction
    disposition: str
    protocol: str
    src: Endpoint
    dest: Endpoint
    count: int = 1
    src_port: int | None = None
    dest_port: int | None = None
    cluster: str | None = None
    location: str | None = None
    project: str | None = None
    node: str | None = None
    policies: tuple[Policy, ...] = field(default=())

    @property
    def policed(self) -> Endpoint:
        """The pod the policy applies to: dest for ingress, src for egress."""
        return self.dest if self.direction == "ingress" else self.src

    @property
    def namespace(self) -> str | None:
        """The policed namespace, as GKE's deny delegation reads it."""
        return self.policed.namespace

    @property
    def port_label(self) -> str:
        return f"{self.dest_port}/{self.protocol}" if self.dest_port is not None else self.protocol


@dataclass(frozen=True, slots=True)
class NetworkNames:
    """Names for bare IPs from the `networks` setting; the most specific prefix wins."""

    networks: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = ()
    #: The IPv4 networks as (address, mask, name) integers, in the same order: a storm names
    #: thousands of bare IPv4 addresses, and `ipaddress` parses each in Python, several µs apiece.
    _v4: tuple[tuple[int, int, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        v4 = tuple(
            (int(network.network_address), int(network.netmask), name)
            for network, name in self.networks
            if network.version == 4
        )
        object.__setattr__(self, "_v4", v4)

    @classmethod
    def from_mapping(cls, names: Mapping[str, str]) -> NetworkNames:
        parsed = [(ipaddress.ip_network(cidr, strict=False), name) for cidr, name in names.items()]
        parsed.sort(key=lambda item: item[0].prefixlen, reverse=True)
        return cls(tuple(parsed))

    def name(self, ip: str) -> str | None:
        if not self.networks:
            return None
        number = _dotted_quad(ip)
        if number is not None:
            for start, mask, name in self._v4:
                if number & mask == start:
                    return name
            return None
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for network, name in self.networks:
            if address.version == network.version and address in network:
                return name
        return None


def _dotted_quad(ip: str) -> int | None:
    """An IPv4 address in the form `ipaddress` accepts (four decimal octets, no leading zeros) as
    an integer; None for anything else, which `ipaddress` then reads or refuses."""
    octets = ip.split(".")
    if len(octets) != 4:
        return None
    number = 0
    for octet in octets:
        if not (octet.isascii() and octet.isdigit()) or len(octet) > 3 or (octet[0] == "0" and octet != "0"):
            return None
        value = int(octet)
        if value > 255:
            return None
        number = number << 8 | value
    return number


# Kubernetes' generated names use this alphabet (no vowels, no 0/1/3) for both the ReplicaSet's
# pod-template hash and the pod's random suffix; matching it keeps real name parts like `-proxy`.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_POD_SUFFIX = re.compile(rf"-[{_SAFE}]{{5}}$")
_TEMPLATE_HASH = re.compile(rf"-(?=[{_SAFE}0-9]*[0-9])[{_SAFE}0-9]{{6,10}}$")


def workload_name(pod: str | None, workload: str | None, kind: str | None) -> tuple[str | None, str | None]:
    """(name, kind) of the workload a pod belongs to, naming Deployments rather than ReplicaSets."""
    if workload:
        if kind == "ReplicaSet" and _TEMPLATE_HASH.search(workload):
            return _TEMPLATE_HASH.sub("", workload), "Deployment"
        return workload, kind
    if not pod:
        return None, kind
    base = _POD_SUFFIX.sub("", pod)
    if base != pod:
        base = _TEMPLATE_HASH.sub("", base)
    return base, kind


class EntryParser:
    """Message bodies -> `PolicyEvent`s, remembering what a storm repeats.

    A storm is the same few thousand endpoints and the same seconds over and over, so each distinct
    endpoint is named once (workload-name patterns, `networks` lookup) and each distinct second is
    parsed once; memos are bounded by `memo_size` and start afresh when full.

    `loads` is the JSON decoder. A strict one (orjson: UTF-8 only, no lone surrogates, 64-bit
    integers) is given by the shell for speed; whatever it refuses is decoded again by the standard
    library, so a rejection says exactly what it said before and text is then checked field by field.
    """

    def __init__(
        self,
        networks: NetworkNames | None = None,
        loads: Callable[[bytes], Any] | None = None,
        memo_size: int = 100_000,
    ) -> None:
        self.networks = networks or NetworkNames()
        self._strict_loads = loads
        self.memo_size = memo_size
        self._endpoints: dict[tuple[object, ...], Endpoint] = {}
        self._seconds: dict[str, datetime] = {}
        self._sites: dict[tuple[object, ...], tuple[str | None, str | None, str | None, str | None]] = {}
        self._log_names: set[str] = set()

    def parse(self, data: bytes) -> PolicyEvent:
        """A Pub/Sub message body (a LogEntry, or a push envelope around one) -> `PolicyEvent`."""
        try:
            return self._parse(data, strict=self._strict_loads is not None)
        except RejectedEntry:
            if self._strict_loads is None:
                raise
        # The strict decoder reads a few things otherwise (an integer past 64 bits becomes a
        # float), so a rejection is worded by the standard library's reading, as a fresh parse
        # would word it. Both readings accept the same entries: this costs rejected messages only.
        return self._parse(data, strict=False)

    def _parse(self, data: bytes, *, strict: bool) -> PolicyEvent:
        document, checked = self._load(data, strict)
        if isinstance(document, dict) and isinstance(document.get("message"), dict):
            # Hash the LogEntry, not the envelope: a redelivery's envelope differs (deliveryAttempt, ...).
            data = _unwrap_push(document["message"])
            document, checked = self._load(data, strict)
        if not isinstance(document, dict):
            raise RejectedEntry(
                "not_log_entry", f"expected a JSON object (a LogEntry), got {json_kind(document)}"
            )
        return self.entry(document, data, checked_text=checked)

    def _load(self, data: bytes, strict: bool) -> tuple[Any, bool]:
        """(document, whether its text is known to be valid Unicode)."""
        if strict and self._strict_loads is not None:
            # On refusal the standard library says why, or accepts what the strict decoder would not.
            with contextlib.suppress(ValueError):
                return self._strict_loads(data), True
        return _load_json(data), False

    def entry(
        self,
        entry: Mapping[str, Any],
        data: bytes | None = None,
        *,
        fallback_id: str | None = None,
        checked_text: bool = False,
    ) -> PolicyEvent:
        """A LogEntry as a dict (camelCase, as Cloud Logging exports it) -> `PolicyEvent`. Without an
        `insertId`, the entry is named by `fallback_id`, else by a hash of `data` (its bytes)."""
        log_name = entry.get("logName")
        if type(log_name) is not str or log_name not in self._log_names:
            if len(self._log_names) >= 64:
                self._log_names.clear()  # one per project and sink in practice; bounded anyway
            self._log_names.add(_check_log_name(log_name))
        payload = entry.get("jsonPayload")
        if not isinstance(payload, dict):
            raise RejectedEntry("no_payload", "the LogEntry has no jsonPayload object")
        connection = payload.get("connection")
        if not isinstance(connection, dict):
            raise RejectedEntry("no_connection", "jsonPayload.connection is missing or not an object")
        labels = _mapping(_mapping(entry.get("resource"), "resource").get("labels"), "resource.labels")
        text = _text if checked_text else _opt_str
        insert_id = text(entry, "insertId") or fallback_id or (_content_id(data) if data else None)
        if not insert_id:
            raise RejectedEntry("no_insert_id", "the LogEntry has no insertId")
        if len(insert_id) > MAX_INSERT_ID:
            raise RejectedEntry(
                "bad_insert_id", f"insertId is {len(insert_id)} characters, more than {MAX_INSERT_ID}"
            )
        src_ip = text(connection, "src_ip", "connection.")
        dest_ip = text(connection, "dest_ip", "connection.")
        # The common values pass one cheap test each; anything else gets the full check, which
        # normalizes it or says what is wrong.
        # The constants, not the decoder's copies: the grouper keeps these in every tracked flow.
        direction = connection.get("direction")
        direction = (
            "ingress"
            if direction == "ingress"
            else "egress"
            if direction == "egress"
            else _direction(connection)
        )
        disposition = payload.get("disposition")
        disposition = (
            "deny" if disposition == "deny" else "allow" if disposition == "allow" else _disposition(payload)
        )
        protocol = connection.get("protocol")
        protocol = _PROTOCOLS.get(protocol) if type(protocol) is str else None
        if protocol is None:
            protocol = _protocol(connection)
        count = payload.get("count", 1)
        if type(count) is not int or not 0 < count <= MAX_COUNT:
            count = _count(payload)
        src_port = connection.get("src_port")
        if type(src_port) is not int or not 0 < src_port < 65536:
            src_port = _port(connection, "src_port")
        dest_port = connection.get("dest_port")
        if type(dest_port) is not int or not 0 < dest_port < 65536:
            dest_port = _port(connection, "dest_port")
        cluster, location, project, node = self._site(labels, payload, text)
        policies = payload.get("policies")
        return PolicyEvent(
            insert_id,
            self._timestamp(entry, payload),
            direction,
            disposition,
            protocol,
            self._endpoint(payload.get("src"), src_ip, "src"),
            self._endpoint(payload.get("dest"), dest_ip, "dest"),
            count,
            src_port,
            dest_port,
            cluster,
            location,
            project,
            node,
            _policies(policies) if policies is not None else (),
        )

    def _site(
        self, labels: Mapping[str, Any], payload: Mapping[str, Any], text: Callable[..., str | None]
    ) -> tuple[str | None, str | None, str | None, str | None]:
        """(cluster, location, project, node): the same few hundred combinations all storm long."""
        node = payload.get("node_name")
        try:
            key = (node, *labels.items())
            site = self._sites.get(key)
        except TypeError:  # an unhashable value: checked the slow way, and refused
            key, site = None, None
        if site is None:
            site = (
                text(labels, "cluster_name", "resource.labels."),
                text(labels, "location", "resource.labels."),
                text(labels, "project_id", "resource.labels."),
                text(payload, "node_name", "jsonPayload.") or text(labels, "node_name", "resource.labels."),
            )
            if key is not None:
                self._remember(self._sites, key, site)
        return site

    def _timestamp(self, entry: Mapping[str, Any], payload: Mapping[str, Any]) -> datetime:
        return self._stamp(entry.get("timestamp") or payload.get("timestamp"))

    def _stamp(self, raw: object) -> datetime:
        """An entry's timestamp value -> datetime, each distinct second parsed once."""
        if type(raw) is str and len(raw) > 20:
            # The usual shape, `2026-11-02T09:00:00.123456789Z`: the second from the memo, the
            # fraction (truncated to microseconds, as `parse_timestamp` does) added to it.
            fraction = raw[20:-1]
            if raw[19] == "." and raw[-1] in "Zz" and fraction.isdigit() and fraction.isascii():
                if raw[-1] == "Z" and raw[:19] in self._seconds:
                    # A second seen valid and a fraction of ASCII digits: `fromisoformat` reads
                    # exactly that (truncating past microseconds, in UTC), several times faster.
                    return datetime.fromisoformat(raw)
                second = self._seconds.get(raw[:19])
                if second is None:
                    try:
                        second = parse_timestamp(raw[:19] + "Z")
                    except RejectedEntry:
                        return _timestamp(raw)  # which says what is wrong with the whole value
                    self._remember(self._seconds, raw[:19], second)
                return second.replace(microsecond=int(fraction[:6].ljust(6, "0")))
        return _timestamp(raw)

    def _endpoint(self, raw: object, ip: str | None, where: str) -> Endpoint:
        if type(raw) is dict:
            get = raw.get
            try:
                # Exactly the fields `_endpoint` reads (nothing else changes its answer): a flat
                # key is a third of the memory of the side's items.
                key = (
                    ip,
                    get("pod_name"),
                    get("namespace"),
                    get("pod_namespace"),
                    get("workload_name"),
                    get("workload_kind"),
                    get("node_name"),
                    get("instance"),
                )
                endpoint = self._endpoints.get(key)
            except TypeError:  # an unhashable value (a list, an object): named the slow way, and refused
                return _endpoint(raw, ip, self.networks, where)
            if endpoint is None:
                endpoint = _endpoint(raw, ip, self.networks, where)
                self._remember(self._endpoints, key, endpoint)
            return endpoint
        return _endpoint(raw, ip, self.networks, where)

    def _remember(self, memo: dict[Any, Any], key: object, value: object) -> None:
        if len(memo) >= self.memo_size:
            memo.clear()  # bounded: a storm's working set fills it again within a few batches
        memo[key] = value


def parse_message(data: bytes, networks: NetworkNames = NetworkNames()) -> PolicyEvent:
    """One message body -> `PolicyEvent`, with the standard library's decoder and no memo carried
    over: for single messages and tests. Batches go through one long-lived `EntryParser`."""
    return EntryParser(networks).parse(data)


def parse_entry(
    entry: Mapping[str, Any], networks: NetworkNames, fallback_id: str | None = None
) -> PolicyEvent:
    """A LogEntry as a dict (camelCase, as Cloud Logging exports it) -> `PolicyEvent`."""
    return EntryParser(networks).entry(entry, fallback_id=fallback_id)


def json_kind(value: object) -> str:
    """What a decoded JSON value is, in JSON's words: `a number`, not `int`; `null`, not `NoneType`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"a number ({value!r:.40})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _load_json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and integers past Python's digit limit;
        # RecursionError is arrays or objects nested too deep.
        raise RejectedEntry("not_json", f"the message is not JSON ({error})") from None


def _unwrap_push(message: Mapping[str, Any]) -> bytes:
    data = message.get("data")
    if not isinstance(data, str):
        raise RejectedEntry("bad_envelope", "the push envelope has no message.data string")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RejectedEntry("bad_envelope", "message.data in the push envelope is not base64") from None


def _content_id(data: bytes) -> str:
    # Entries without insertId (hand-made files) still dedupe: the same bytes are the same entry.
    return "sha256:" + hashlib.sha256(data).hexdigest()[:32]


def _check_log_name(log_name: object) -> str:
    if not isinstance(log_name, str):
        raise RejectedEntry(
            "wrong_log", "the LogEntry has no logName; expected projects/P/logs/policy-action"
        )
    if log_name.rsplit("/", 1)[-1] != POLICY_ACTION_LOG:
        raise RejectedEntry("wrong_log", f"logName {log_name!r} is not a policy-action log")
    return log_name


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RejectedEntry("bad_type", f"{where} should be an object, got {json_kind(value)}")
    return value


def _text(source: Mapping[str, Any], key: str, where: str = "") -> str | None:
    """`_opt_str` for documents whose decoder already refused text that is not valid Unicode."""
    value = source.get(key)
    if type(value) is str:
        return value or None
    if value is None:
        return None
    raise RejectedEntry("bad_type", f"{where}{key} should be a string, got {json_kind(value)}")


def _opt_str(source: Mapping[str, Any], key: str, where: str = "") -> str | None:
    value = source.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RejectedEntry("bad_type", f"{where}{key} should be a string, got {json_kind(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape: no database can store it
        raise RejectedEntry("bad_type", f"{where}{key} is not valid Unicode text") from None
    return value


def _timestamp(raw: object) -> datetime:
    if raw is None:
        raise RejectedEntry("no_timestamp", "neither the LogEntry nor its payload has a timestamp")
    if not isinstance(raw, str):
        raise RejectedEntry("bad_type", f"timestamp should be an RFC 3339 string, got {json_kind(raw)}")
    return parse_timestamp(raw)


def parse_timestamp(raw: str) -> datetime:
    """RFC 3339 with up to nanoseconds (Python keeps microseconds) -> aware UTC datetime."""
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", raw.strip()
    )
    if not match:
        raise RejectedEntry("bad_timestamp", f"timestamp {raw!r} is not RFC 3339")
    fraction = (match.group(2) or ".0")[:7]
    zone = "+00:00" if match.group(3) in ("Z", "z") else match.group(3)
    try:
        # astimezone overflows for year 1 or 9999 with an offset that crosses the range's edge.
        return datetime.fromisoformat(f"{match.group(1).replace(' ', 'T')}{fraction}{zone}").astimezone(UTC)
    except (ValueError, OverflowError):
        raise RejectedEntry("bad_timestamp", f"timestamp {raw!r} is not a valid date") from None


def _direction(connection: Mapping[str, Any]) -> Direction:
    value = connection.get("direction")
    if value == "ingress":
        return "ingress"
    if value == "egress":
        return "egress"
    raise RejectedEntry("bad_direction", f"connection.direction is {value!r}, expected ingress or egress")


def _disposition(payload: Mapping[str, Any]) -> str:
    value = payload.get("disposition")
    if value not in ("allow", "deny"):
        raise RejectedEntry("bad_disposition", f"disposition is {value!r}, expected allow or deny")
    return str(value)


def _protocol(connection: Mapping[str, Any]) -> str:
    value = connection.get("protocol")
    if value is None:
        return "unknown"
    if not isinstance(value, str):
        raise RejectedEntry("bad_type", f"connection.protocol should be a string, got {json_kind(value)}")
    lowered = value.lower()
    return lowered if lowered in KNOWN_PROTOCOLS else "unknown"


def _port(connection: Mapping[str, Any], key: str) -> int | None:
    value = connection.get(key)
    if value is None or value == 0:  # the logger omits ports that are 0 (ICMP, unknown protocols)
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise RejectedEntry("bad_type", f"connection.{key} should be a port number, got {value!r}")
    return value


def _count(payload: Mapping[str, Any]) -> int:
    value = payload.get("count", 1)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise RejectedEntry(
            "bad_type", f"count should be a whole number from 1 to {MAX_COUNT}, got {value!r}"
        )
    return value


def _endpoint(raw: object, ip: str | None, networks: NetworkNames, where: str) -> Endpoint:
    # Each field is checked only where it decides the answer, as `name_endpoint` reads it.
    side = _mapping(raw, where)
    where = f"{where}."
    pod = _opt_str(side, "pod_name", where)
    if pod:
        namespace = _opt_str(side, "namespace", where) or _opt_str(side, "pod_namespace", where)
        workload = _opt_str(side, "workload_name", where)
        kind = _opt_str(side, "workload_kind", where)
        return name_endpoint(ip, pod, namespace, None, workload, kind, None, None, networks)
    node = _opt_str(side, "node_name", where)
    kind = None if node else _opt_str(side, "workload_kind", where)
    if node or kind == "Node":
        return name_endpoint(ip, None, None, None, None, kind, node, None, networks)
    instance = _opt_str(side, "instance", where)
    return name_endpoint(ip, None, None, None, None, None, None, instance, networks)


def name_endpoint(
    ip: str | None,
    pod: str | None,
    namespace: str | None,
    pod_namespace: str | None,
    workload: str | None,
    workload_kind: str | None,
    node: str | None,
    instance: str | None,
    networks: NetworkNames,
) -> Endpoint:
    """One side of a flow from the fields GKE logs for it (`pod_name`, ..., `instance`), each a
    valid string or None (an empty string counts as absent), and the connection's IP for that side."""
    # Interned: namespaces, workloads, kinds and nodes repeat across thousands of endpoints, which
    # each hold their own decoded copy otherwise.
    if pod:
        name, kind = workload_name(pod, workload or None, workload_kind or None)
        namespace = namespace or pod_namespace
        return Endpoint(
            "pod",
            ip=ip or None,
            namespace=intern(namespace) if namespace else None,
            pod=pod,
            workload=intern(name) if name else None,
            workload_kind=intern(kind) if kind else None,
        )
    if node or workload_kind == "Node":
        return Endpoint("node", ip=ip or None, node=intern(node) if node else None, workload_kind="Node")
    instance = instance or ip or None
    return Endpoint("ip", ip=instance, network=networks.name(instance) if instance else None)


def _policies(raw: object) -> tuple[Policy, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RejectedEntry("bad_type", f"policies should be a list, got {json_kind(raw)}")
    policies = []
    for item in raw:
        policy = _mapping(item, "policies[]")
        policies.append(
            Policy(
                kind=_opt_str(policy, "kind", "policies[]."),
                name=_opt_str(policy, "name", "policies[]."),
                namespace=_opt_str(policy, "namespace", "policies[]."),
            )
        )
    return tuple(policies)
