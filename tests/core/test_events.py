"""The policy-action parser (`bot.core.events`): Pub/Sub message bytes -> `PolicyEvent` or `RejectedEntry`.

Covers, against the reference doc (shared/reference/gke-network-policy-logging.md):
- every sample payload from section 2, verbatim, inside the doc's LogEntry envelope, parsed to full events
  (pods, nodes, bare IPs named via `networks`, policies on allow entries, counts, resource labels);
- workload naming: ReplicaSet -> Deployment, and the old format's names derived from the pod name;
- timestamps (LogEntry first, payload second, nanoseconds, offsets, always aware UTC);
- protocols and ports (ICMP and `unknown` without ports, ports of 0 are absent);
- the Pub/Sub push envelope, and the content-hash id for entries without `insertId`;
- one table of malformed inputs, each with its rejection code and a reason naming the problem;
- the policed side (`policed`, `namespace`) per direction, endpoint labels, `NetworkNames`;
- property tests: arbitrary bytes, arbitrary JSON and mutated valid entries only ever give an event or a
  `RejectedEntry`; every parsed event survives the store's `event_to_record` -> JSON -> `event_from_record`.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypedDict

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.storm import StormShape, storm
from bot.adapters.logentry import FAST_MAX_BYTES, FastEntryParser
from bot.adapters.store.records import decode_event, event_from_record, event_to_record
from bot.core.events import (
    KNOWN_PROTOCOLS,
    Endpoint,
    EntryParser,
    NetworkNames,
    Policy,
    PolicyEvent,
    RejectedEntry,
    parse_entry,
    parse_message,
    parse_timestamp,
    workload_name,
)
from bot.pipeline import entry_parser
from tests.samples import LOG_NAME, NODE, SAMPLES, in_envelope

# --------------------------------------------------------------------------------------------------
# Helpers and fixtures
# --------------------------------------------------------------------------------------------------

DENY_POD, ALLOW_POD, DENY_NODE, ALLOW_METADATA, DENY_OLD_FORMAT = SAMPLES

NETWORKS = NetworkNames.from_mapping(
    {
        "169.254.169.254/32": "metadata-server",
        "10.0.0.0/8": "vpc",
        "10.128.0.0/16": "nodes",
        "2001:db8::/32": "docs-v6",
    }
)
REJECTION_CODES = frozenset(
    {
        "not_json",
        "bad_envelope",
        "not_log_entry",
        "wrong_log",
        "no_payload",
        "no_connection",
        "no_insert_id",
        "no_timestamp",
        "bad_timestamp",
        "bad_type",
        "bad_direction",
        "bad_disposition",
    }
)


BASE = in_envelope(DENY_POD)


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def push(data: bytes, message_id: str = "1234567890", **extra: object) -> bytes:
    """A Pub/Sub push request body around `data`."""
    message = {"data": base64.b64encode(data).decode(), "messageId": message_id, "attributes": {}}
    return encode({"message": message, "subscription": "projects/my-project/subscriptions/netlog", **extra})


def parse(entry: Mapping[str, Any], networks: NetworkNames = NETWORKS) -> PolicyEvent:
    return parse_message(encode(entry), networks)


def rejection(data: bytes) -> RejectedEntry:
    with pytest.raises(RejectedEntry) as caught:
        parse_message(data, NETWORKS)
    return caught.value


def _split(path: str) -> tuple[list[str], str]:
    *parents, last = path.split(".")
    return parents, last


def with_field(path: str, value: object, entry: Mapping[str, Any] = BASE) -> dict[str, Any]:
    """A copy of `entry` with the dotted `path` set to `value` (intermediate objects created)."""
    result = copy.deepcopy(dict(entry))
    parents, last = _split(path)
    node: dict[str, Any] = result
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return result


def without(path: str, entry: Mapping[str, Any] = BASE) -> dict[str, Any]:
    """A copy of `entry` without the dotted `path`."""
    result = copy.deepcopy(dict(entry))
    parents, last = _split(path)
    node: dict[str, Any] = result
    for key in parents:
        node = node[key]
    del node[last]
    return result


def pod(
    name: str,
    ip: str,
    workload: str | None,
    kind: str | None,
    namespace: str | None = "default",
) -> Endpoint:
    return Endpoint("pod", ip=ip, namespace=namespace, pod=name, workload=workload, workload_kind=kind)


def parse_or_reject(data: bytes) -> PolicyEvent | RejectedEntry:
    """The parser's whole contract: an event, or a `RejectedEntry` with a known code and a reason."""
    result: PolicyEvent | RejectedEntry
    try:
        result = parse_message(data, NETWORKS)
    except RejectedEntry as error:
        result = error
    if isinstance(result, RejectedEntry):
        assert result.code in REJECTION_CODES
        assert result.reason
        assert str(result) == result.reason
    else:
        check_invariants(result)
    return result


def check_invariants(event: PolicyEvent) -> None:
    assert event.insert_id
    assert event.direction in ("ingress", "egress")
    assert event.disposition in ("allow", "deny")
    assert event.protocol in KNOWN_PROTOCOLS
    assert event.count >= 1
    assert event.timestamp.utcoffset() == timedelta(0)
    for port in (event.src_port, event.dest_port):
        assert port is None or 0 < port < 65536
    for side in (event.src, event.dest):
        assert side.kind in ("pod", "node", "ip")
        assert side.label
    assert event.policed is (event.dest if event.direction == "ingress" else event.src)
    assert_round_trips(event)


def assert_round_trips(event: PolicyEvent) -> None:
    record = event_to_record(event)
    assert event_from_record(record) == event
    assert event_from_record(json.loads(json.dumps(record))) == event
    assert decode_event(json.dumps(record)) == event  # the fast read grouping uses


# --------------------------------------------------------------------------------------------------
# The reference doc's sample payloads
# --------------------------------------------------------------------------------------------------

CLIENT_DENY = pod("client-deny-5689846f5b-cqqsj", "10.84.1.8", "client-deny", "Deployment")
TEST_SERVICE = pod("test-service-745c798fc9-hzpxt", "10.84.0.11", "test-service", "Deployment")


class Labels(TypedDict):
    cluster: str
    location: str
    project: str
    node: str


LABELS: Labels = {"cluster": "demo", "location": "us-central1", "project": "my-project", "node": NODE}
EXPECTED_SAMPLES = [
    PolicyEvent(
        insert_id="sample-1",
        timestamp=datetime(2020, 6, 13, 21, 30, 22, 292379, tzinfo=UTC),
        direction="ingress",
        disposition="deny",
        protocol="tcp",
        src=CLIENT_DENY,
        dest=TEST_SERVICE,
        count=1,
        src_port=45084,
        dest_port=8080,
        **LABELS,
    ),
    PolicyEvent(
        insert_id="sample-2",
        timestamp=datetime(2020, 6, 13, 21, 29, 31, 445836, tzinfo=UTC),
        direction="ingress",
        disposition="allow",
        protocol="tcp",
        src=pod("client-allow-7b78d7c957-zkn54", "10.84.1.7", "client-allow", "Deployment"),
        dest=TEST_SERVICE,
        count=1,
        src_port=55644,
        dest_port=8080,
        policies=(Policy("NetworkPolicy", "np", "default"),),
        **LABELS,
    ),
    PolicyEvent(
        insert_id="sample-3",
        timestamp=datetime(2020, 6, 13, 21, 32, 0, 0, tzinfo=UTC),
        direction="ingress",
        disposition="deny",
        protocol="tcp",
        src=pod("client-deny-5689846f5b-cqqsj", "10.84.1.6", "client-deny", "Deployment"),
        dest=Endpoint("node", ip="10.128.0.9", node=NODE, workload_kind="Node"),
        count=1,
        src_port=45084,
        dest_port=22,
        **LABELS,
    ),
    PolicyEvent(
        insert_id="sample-4",
        timestamp=datetime(2020, 6, 13, 21, 32, 0, 0, tzinfo=UTC),
        direction="egress",
        disposition="allow",
        protocol="udp",
        src=pod("client-allow-ffdfccbd5-d4cqp", "10.84.1.6", "client-allow", "Deployment"),
        dest=Endpoint("ip", ip="169.254.169.254", network="metadata-server"),
        count=1,
        src_port=45084,
        dest_port=53,
        policies=(Policy("FQDNNetworkPolicy", "client-allow", "default"),),
        **LABELS,
    ),
    PolicyEvent(
        insert_id="sample-5",
        timestamp=datetime(2020, 6, 13, 21, 30, 22, 292379, tzinfo=UTC),
        direction="ingress",
        disposition="deny",
        protocol="tcp",
        src=pod("client-deny-5689846f5b-cqqsj", "10.84.1.8", "client-deny", None),
        dest=pod("test-service-745c798fc9-hzpxt", "10.84.0.11", "test-service", None),
        count=1,
        src_port=45084,
        dest_port=8080,
        **LABELS,
    ),
]


@pytest.mark.parametrize(
    ("payload", "expected"),
    list(zip(SAMPLES, EXPECTED_SAMPLES, strict=True)),
    ids=["deny-pod", "allow-pod", "deny-node", "allow-metadata", "deny-old-format"],
)
def test_sample_payload_parses_to_the_expected_event(payload: dict[str, Any], expected: PolicyEvent) -> None:
    event = parse(in_envelope(payload, insert_id=expected.insert_id))
    assert event == expected
    assert event.timestamp.tzinfo is not None
    assert_round_trips(event)


@pytest.mark.parametrize(
    ("payload", "src_label", "dest_label", "port_label"),
    [
        (DENY_POD, "default/client-deny", "default/test-service", "8080/tcp"),
        (ALLOW_POD, "default/client-allow", "default/test-service", "8080/tcp"),
        (DENY_NODE, "default/client-deny", f"node/{NODE}", "22/tcp"),
        (ALLOW_METADATA, "default/client-allow", "metadata-server (169.254.169.254)", "53/udp"),
        (DENY_OLD_FORMAT, "default/client-deny", "default/test-service", "8080/tcp"),
    ],
)
def test_sample_labels(payload: dict[str, Any], src_label: str, dest_label: str, port_label: str) -> None:
    event = parse(in_envelope(payload))
    assert (event.src.label, event.dest.label, event.port_label) == (src_label, dest_label, port_label)


def test_samples_without_networks_leave_bare_ips_unnamed() -> None:
    event = parse(in_envelope(ALLOW_METADATA), NetworkNames())
    assert event.dest == Endpoint("ip", ip="169.254.169.254")
    assert event.dest.label == "169.254.169.254"


def test_insert_id_is_kept_as_the_dedupe_key() -> None:
    ids = {parse(in_envelope(payload, insert_id=f"id-{n}")).insert_id for n, payload in enumerate(SAMPLES)}
    assert ids == {f"id-{n}" for n in range(len(SAMPLES))}


def test_deny_count_is_the_number_of_folded_attempts() -> None:
    assert parse(with_field("jsonPayload.count", 17)).count == 17


def test_missing_count_means_one() -> None:
    assert parse(without("jsonPayload.count")).count == 1


def test_node_name_in_payload_is_preferred_over_resource_labels() -> None:
    assert parse(with_field("jsonPayload.node_name", "gke-other-node")).node == "gke-other-node"
    assert parse(with_field("jsonPayload.node_name", "")).node == NODE


def test_resource_labels_are_optional() -> None:
    event = parse(without("resource"))
    assert (event.cluster, event.location, event.project, event.node) == (None, None, None, None)
    assert parse(with_field("resource.labels", None)).cluster is None


def test_endpoints_default_to_the_connection_ips() -> None:
    """No `src`/`dest` (or empty ones): bare IPs from `connection`, named via `networks`."""
    event = parse(with_field("jsonPayload.src", {}, without("jsonPayload.dest")))
    assert event.src == Endpoint("ip", ip="10.84.1.8", network="vpc")
    assert event.dest == Endpoint("ip", ip="10.84.0.11", network="vpc")


def test_unknown_fields_are_ignored() -> None:
    entry = with_field("jsonPayload.connection.tcp_flags", ["SYN"], with_field("labels", {"a": "b"}))
    assert parse(entry) == parse(BASE)


# --------------------------------------------------------------------------------------------------
# Workloads and namespaces
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod_name", "workload", "kind", "expected"),
    [
        # New format: Hubble's owner; a ReplicaSet with a template hash names its Deployment.
        (
            "client-deny-5689846f5b-cqqsj",
            "client-deny-5689846f5b",
            "ReplicaSet",
            ("client-deny", "Deployment"),
        ),
        (
            "test-service-745c798fc9-hzpxt",
            "test-service-745c798fc9",
            "ReplicaSet",
            ("test-service", "Deployment"),
        ),
        ("client-allow-ffdfccbd5-d4cqp", "client-allow", "Deployment", ("client-allow", "Deployment")),
        ("frontend-3472869412-x7k2p", "frontend-3472869412", "ReplicaSet", ("frontend", "Deployment")),
        ("my-rs-x7k2p", "my-rs", "ReplicaSet", ("my-rs", "ReplicaSet")),  # a bare ReplicaSet: no hash
        ("db-0", "db", "StatefulSet", ("db", "StatefulSet")),
        ("fluentbit-gke-x7k2p", "fluentbit-gke", "DaemonSet", ("fluentbit-gke", "DaemonSet")),
        ("report-28471930-8xk2c", "report-28471930", "Job", ("report-28471930", "Job")),  # only ReplicaSets
        # Old format: only the pod name; strip the random suffix, then the template hash.
        ("client-deny-5689846f5b-cqqsj", None, None, ("client-deny", None)),
        ("test-service-745c798fc9-hzpxt", None, None, ("test-service", None)),
        ("client-allow-ffdfccbd5-d4cqp", None, None, ("client-allow", None)),  # a 9-character hash
        ("frontend-3472869412-x7k2p", None, None, ("frontend", None)),  # pre-1.11 decimal hash
        ("fluentbit-gke-x7k2p", None, None, ("fluentbit-gke", None)),  # a DaemonSet: suffix only
        ("my-bcdfgh-x7k2p", None, None, ("my-bcdfgh", None)),  # no digit: a name part, not a hash
        # Names that are not generated stay whole.
        ("nginx-proxy", None, None, ("nginx-proxy", None)),
        ("db-0", None, None, ("db-0", None)),
        ("coredns-abcde", None, None, ("coredns-abcde", None)),  # vowels: not Kubernetes' alphabet
        ("api-5689846f5b", None, None, ("api-5689846f5b", None)),  # a hash alone, without pod suffix
        ("web", None, None, ("web", None)),
        (None, None, None, (None, None)),
        ("", None, "Node", (None, "Node")),
    ],
)
def test_workload_name(
    pod_name: str | None, workload: str | None, kind: str | None, expected: tuple[str | None, str | None]
) -> None:
    assert workload_name(pod_name, workload, kind) == expected


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        ({"pod_name": "api-x7k2p", "pod_namespace": "payments"}, ("payments", "api")),
        ({"pod_name": "api-x7k2p", "namespace": "payments", "pod_namespace": "other"}, ("payments", "api")),
        ({"pod_name": "api-x7k2p", "namespace": "", "pod_namespace": "payments"}, ("payments", "api")),
        ({"pod_name": "api-x7k2p"}, (None, "api")),
        ({"pod_name": "nginx-proxy", "pod_namespace": "edge"}, ("edge", "nginx-proxy")),
        ({"pod_name": "db-0", "pod_namespace": "checkout"}, ("checkout", "db-0")),
    ],
)
def test_pod_endpoint_namespace_and_workload(side: dict[str, str], expected: tuple[str | None, str]) -> None:
    event = parse(with_field("jsonPayload.dest", side))
    assert event.dest.kind == "pod"
    assert (event.dest.namespace, event.dest.workload) == expected


NODE_ENDPOINT = Endpoint("node", ip="10.84.0.11", node="gke-n1", workload_kind="Node")


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        ({"node_name": "gke-n1", "workload_kind": "Node"}, NODE_ENDPOINT),
        ({"node_name": "gke-n1"}, NODE_ENDPOINT),
        ({"workload_kind": "Node"}, Endpoint("node", ip="10.84.0.11", workload_kind="Node")),
        ({"instance": "169.254.169.254"}, Endpoint("ip", ip="169.254.169.254", network="metadata-server")),
        ({"instance": "10.128.0.9"}, Endpoint("ip", ip="10.128.0.9", network="nodes")),  # longest prefix
        ({"instance": "203.0.113.7"}, Endpoint("ip", ip="203.0.113.7")),
        ({"instance": "2001:db8::1"}, Endpoint("ip", ip="2001:db8::1", network="docs-v6")),
        ({"instance": "not-an-ip"}, Endpoint("ip", ip="not-an-ip")),
        ({}, Endpoint("ip", ip="10.84.0.11", network="vpc")),
    ],
)
def test_node_and_ip_endpoints(side: dict[str, str], expected: Endpoint) -> None:
    assert parse(with_field("jsonPayload.dest", side)).dest == expected


@pytest.mark.parametrize(
    ("endpoint", "label"),
    [
        (Endpoint("pod", namespace="payments", workload="api", pod="api-x7k2p"), "payments/api"),
        (Endpoint("pod", pod="api-x7k2p"), "?/api-x7k2p"),
        (Endpoint("pod", ip="10.0.0.1"), "?/10.0.0.1"),
        (Endpoint("node", node="gke-n1", ip="10.128.0.9"), "node/gke-n1"),
        (Endpoint("node", ip="10.128.0.9"), "node/10.128.0.9"),
        (
            Endpoint("ip", ip="169.254.169.254", network="metadata-server"),
            "metadata-server (169.254.169.254)",
        ),
        (Endpoint("ip", ip="10.0.0.1", network="10.0.0.1"), "10.0.0.1"),
        (Endpoint("ip", ip="203.0.113.7"), "203.0.113.7"),
        (Endpoint("ip"), "?"),
    ],
)
def test_endpoint_label(endpoint: Endpoint, label: str) -> None:
    assert endpoint.label == label


def test_network_names_accept_host_bits_and_ignore_other_families() -> None:
    names = NetworkNames.from_mapping({"10.1.2.3/8": "vpc", "::/0": "any-v6"})
    assert names.name("10.200.0.1") == "vpc"
    assert names.name("192.168.0.1") is None
    assert names.name("fe80::1") == "any-v6"
    assert names.name("nonsense") is None


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",
        "10.1.255.255",
        "10.2.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "255.255.255.255",
        "192.168.0.1",
        "010.1.2.3",  # leading zeros: refused by `ipaddress`, so by the quick reading too
        "10.1.2.03",
        "256.1.2.3",
        "10.1.2",
        "10.1.2.3.4",
        "10..2.3",
        "+10.1.2.3",
        "10.1.2.-3",
        " 10.1.2.3",
        "10.1.2.3%eth0",
        "10.1.2.3/32",
        "\u0661\u0660.1.2.3",  # Arabic-Indic digits: str.isdigit says yes, `ipaddress` says no
        "::ffff:10.1.2.3",
        "fd00::1",
        "",
    ],
)
def test_network_names_read_ipv4_quickly_as_ipaddress_reads_it(ip: str) -> None:
    # Bare IPv4 addresses are read without `ipaddress` (a storm names thousands); the answer must be
    # the one the `ipaddress` reading gives, including for what it refuses.
    names = NetworkNames.from_mapping(
        {"10.0.0.0/8": "vpc", "10.1.0.0/16": "payments", "169.254.169.254/32": "metadata", "fd00::/8": "ula"}
    )
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        expected = None
    else:
        expected = next(
            (
                name
                for network, name in names.networks
                if network.version == address.version and address in network
            ),
            None,
        )
    assert names.name(ip) == expected


# --------------------------------------------------------------------------------------------------
# The policed side
# --------------------------------------------------------------------------------------------------

CHECKOUT_WEB = {"pod_name": "web-6d9f8b7c5d-x7k2p", "namespace": "checkout"}
PAYMENTS_API = {"pod_name": "api-7b78d7c957-zkn54", "namespace": "payments"}


@pytest.mark.parametrize(
    ("direction", "src", "dest", "policed", "namespace"),
    [
        ("ingress", CHECKOUT_WEB, PAYMENTS_API, "payments/api", "payments"),
        ("egress", CHECKOUT_WEB, PAYMENTS_API, "checkout/web", "checkout"),
        ("egress", CHECKOUT_WEB, {"instance": "203.0.113.7"}, "checkout/web", "checkout"),
        (
            "ingress",
            {"node_name": "gke-n1", "workload_kind": "Node"},
            PAYMENTS_API,
            "payments/api",
            "payments",
        ),
        ("ingress", CHECKOUT_WEB, {"instance": "203.0.113.7"}, "203.0.113.7", None),
    ],
)
def test_policed_side_follows_the_direction(
    direction: str, src: dict[str, str], dest: dict[str, str], policed: str, namespace: str | None
) -> None:
    entry = with_field("jsonPayload.connection.direction", direction)
    entry = with_field("jsonPayload.src", src, entry)
    event = parse(with_field("jsonPayload.dest", dest, entry))
    assert event.policed.label == policed
    assert event.namespace == namespace


# --------------------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2020-06-13T21:30:22.292379064Z", datetime(2020, 6, 13, 21, 30, 22, 292379, tzinfo=UTC)),
        (
            "2020-06-13T21:30:22.999999999Z",
            datetime(2020, 6, 13, 21, 30, 22, 999999, tzinfo=UTC),
        ),  # truncated
        ("2020-06-13T21:32:00.000000001Z", datetime(2020, 6, 13, 21, 32, tzinfo=UTC)),
        ("2020-06-13T21:30:22.5Z", datetime(2020, 6, 13, 21, 30, 22, 500000, tzinfo=UTC)),
        ("2020-06-13T21:30:22Z", datetime(2020, 6, 13, 21, 30, 22, tzinfo=UTC)),
        ("2020-06-13t21:30:22z", datetime(2020, 6, 13, 21, 30, 22, tzinfo=UTC)),
        ("2020-06-13 21:30:22Z", datetime(2020, 6, 13, 21, 30, 22, tzinfo=UTC)),
        ("2020-06-13T23:30:22.123+02:00", datetime(2020, 6, 13, 21, 30, 22, 123000, tzinfo=UTC)),
        ("2020-06-13T16:00:22-05:30", datetime(2020, 6, 13, 21, 30, 22, tzinfo=UTC)),
        ("2020-06-14T00:30:22+03:00", datetime(2020, 6, 13, 21, 30, 22, tzinfo=UTC)),  # across midnight
        (" 2020-06-13T21:30:22Z\n", datetime(2020, 6, 13, 21, 30, 22, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(raw: str, expected: datetime) -> None:
    parsed = parse_timestamp(raw)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "yesterday",
        "2020-06-13",
        "2020-06-13T21:30:22",  # no offset: RFC 3339 requires one
        "2020-06-13T21:30Z",
        "2020-06-13T21:30:22.Z",
        "2020-13-01T00:00:00Z",
        "2020-02-30T00:00:00Z",
        "2020-06-13T24:00:00Z",
        "2020-06-13T21:30:22+24:00",
        "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 once in UTC
        "1592083822",
    ],
)
def test_parse_timestamp_rejects(raw: str) -> None:
    with pytest.raises(RejectedEntry) as caught:
        parse_timestamp(raw)
    assert caught.value.code == "bad_timestamp"
    assert repr(raw) in caught.value.reason


ENTRY_TIME = "2020-06-13T21:30:25.5Z"
PAYLOAD_TIME = "2020-06-13T21:30:22.292379064Z"


@pytest.mark.parametrize(
    ("entry_time", "payload_time", "expected"),
    [
        (ENTRY_TIME, PAYLOAD_TIME, datetime(2020, 6, 13, 21, 30, 25, 500000, tzinfo=UTC)),
        (ENTRY_TIME, None, datetime(2020, 6, 13, 21, 30, 25, 500000, tzinfo=UTC)),
        (None, PAYLOAD_TIME, datetime(2020, 6, 13, 21, 30, 22, 292379, tzinfo=UTC)),
        ("", PAYLOAD_TIME, datetime(2020, 6, 13, 21, 30, 22, 292379, tzinfo=UTC)),
    ],
)
def test_entry_timestamp_wins_over_payload_timestamp(
    entry_time: str | None, payload_time: str | None, expected: datetime
) -> None:
    entry = without("timestamp") if entry_time is None else with_field("timestamp", entry_time)
    if payload_time is None:
        entry = without("jsonPayload.timestamp", entry)
    else:
        entry = with_field("jsonPayload.timestamp", payload_time, entry)
    timestamp = parse(entry).timestamp
    assert timestamp == expected
    assert timestamp.tzinfo is not None
    assert timestamp.utcoffset() == timedelta(0)


def test_an_offset_timestamp_becomes_utc() -> None:
    timestamp = parse(with_field("timestamp", "2020-06-13T23:30:22+02:00")).timestamp
    assert timestamp.tzinfo is UTC
    assert timestamp == datetime(2020, 6, 13, 23, 30, 22, tzinfo=timezone(timedelta(hours=2)))


# --------------------------------------------------------------------------------------------------
# Protocols and ports
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("tcp", "tcp"),
        ("udp", "udp"),
        ("icmp", "icmp"),
        ("unknown", "unknown"),
        ("TCP", "tcp"),
        ("Udp", "udp"),
        ("sctp", "unknown"),
        ("icmpv6", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_protocol(protocol: str | None, expected: str) -> None:
    assert parse(with_field("jsonPayload.connection.protocol", protocol)).protocol == expected


def test_missing_protocol_is_unknown() -> None:
    assert parse(without("jsonPayload.connection.protocol")).protocol == "unknown"


@pytest.mark.parametrize("protocol", ["icmp", "unknown"])
def test_portless_protocols_have_no_ports(protocol: str) -> None:
    entry = with_field("jsonPayload.connection.protocol", protocol)
    entry = without("jsonPayload.connection.src_port", without("jsonPayload.connection.dest_port", entry))
    event = parse(entry)
    assert (event.src_port, event.dest_port) == (None, None)
    assert event.port_label == protocol


@pytest.mark.parametrize(
    ("port", "expected"),
    [(0, None), (None, None), (1, 1), (8080, 8080), (65535, 65535)],
)
def test_ports(port: int | None, expected: int | None) -> None:
    entry = with_field(
        "jsonPayload.connection.src_port", port, with_field("jsonPayload.connection.dest_port", port)
    )
    event = parse(entry)
    assert (event.src_port, event.dest_port) == (expected, expected)


# --------------------------------------------------------------------------------------------------
# Push envelope and ids
# --------------------------------------------------------------------------------------------------


def test_push_envelope_is_accepted() -> None:
    for payload, expected in zip(SAMPLES, EXPECTED_SAMPLES, strict=True):
        data = encode(in_envelope(payload, insert_id=expected.insert_id))
        assert parse_message(push(data), NETWORKS) == expected


def test_entry_without_insert_id_gets_a_stable_content_id() -> None:
    data = encode(without("insertId"))
    first = parse_message(data, NETWORKS).insert_id
    assert first.startswith("sha256:")
    assert parse_message(data, NETWORKS).insert_id == first
    other = encode(without("insertId", with_field("jsonPayload.count", 2)))
    assert parse_message(other, NETWORKS).insert_id != first
    assert parse_message(data + b" ", NETWORKS).insert_id != first  # different bytes, different id
    assert parse(with_field("insertId", "")).insert_id.startswith("sha256:")


def test_content_id_of_a_pushed_entry_ignores_the_envelope() -> None:
    """Redeliveries wrap the same entry in a different envelope; the id must not change."""
    data = encode(without("insertId"))
    bare = parse_message(data, NETWORKS).insert_id
    assert parse_message(push(data, "1"), NETWORKS).insert_id == bare
    assert parse_message(push(data, "2", deliveryAttempt=5), NETWORKS).insert_id == bare


def test_parse_entry_without_any_id_is_rejected() -> None:
    with pytest.raises(RejectedEntry) as caught:
        parse_entry(without("insertId"), NETWORKS)
    assert caught.value.code == "no_insert_id"
    assert parse_entry(without("insertId"), NETWORKS, fallback_id="x").insert_id == "x"


# --------------------------------------------------------------------------------------------------
# Rejections
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    name: str
    data: bytes
    code: str
    reason: str  # a fragment of the reason that says what is wrong


def _bad(name: str, entry: object, code: str, reason: str) -> Bad:
    return Bad(name, entry if isinstance(entry, bytes) else encode(entry), code, reason)


BAD = [
    _bad("not JSON", b"policy-action deny", "not_json", "not JSON"),
    _bad("truncated JSON", encode(BASE)[:-1], "not_json", "not JSON"),
    _bad("empty", b"", "not_json", "not JSON"),
    _bad("invalid UTF-8", encode(BASE).replace(b"client-deny", b"client-\xff"), "not_json", "can't decode"),
    _bad("deeply nested", b"[" * 100_000 + b"]" * 100_000, "not_json", "not JSON"),
    _bad("integer past the digit limit", b'{"count": ' + b"9" * 5000 + b"}", "not_json", "not JSON"),
    _bad("array", [BASE], "not_log_entry", "got a list"),
    _bad("number", 42, "not_log_entry", "got a number (42)"),
    _bad("string", "entry", "not_log_entry", "got a string"),
    _bad("null", None, "not_log_entry", "got null"),
    _bad(
        "kubelet log", with_field("logName", "projects/my-project/logs/kubelet"), "wrong_log", "logs/kubelet'"
    ),
    _bad("missing logName", without("logName"), "wrong_log", "no logName"),
    _bad("logName not a string", with_field("logName", 7), "wrong_log", "no logName"),
    _bad("missing jsonPayload", without("jsonPayload"), "no_payload", "no jsonPayload"),
    _bad("text payload", with_field("jsonPayload", "deny 10.84.1.8"), "no_payload", "no jsonPayload"),
    _bad("missing connection", without("jsonPayload.connection"), "no_connection", "connection is missing"),
    _bad(
        "connection a string", with_field("jsonPayload.connection", "tcp"), "no_connection", "not an object"
    ),
    _bad("connection a list", with_field("jsonPayload.connection", []), "no_connection", "not an object"),
    _bad("bad direction", with_field("jsonPayload.connection.direction", "both"), "bad_direction", "'both'"),
    _bad("no direction", without("jsonPayload.connection.direction"), "bad_direction", "None"),
    _bad("bad disposition", with_field("jsonPayload.disposition", "drop"), "bad_disposition", "'drop'"),
    _bad("no disposition", without("jsonPayload.disposition"), "bad_disposition", "expected allow or deny"),
    _bad(
        "port as a string",
        with_field("jsonPayload.connection.dest_port", "8080"),
        "bad_type",
        "connection.dest_port should be a port number, got '8080'",
    ),
    _bad("port too big", with_field("jsonPayload.connection.src_port", 65536), "bad_type", "src_port"),
    _bad("negative port", with_field("jsonPayload.connection.src_port", -1), "bad_type", "src_port"),
    _bad("port a float", with_field("jsonPayload.connection.dest_port", 80.0), "bad_type", "dest_port"),
    _bad("port a bool", with_field("jsonPayload.connection.dest_port", True), "bad_type", "dest_port"),
    _bad(
        "count 0", with_field("jsonPayload.count", 0), "bad_type", "count should be a whole number from 1 to"
    ),
    _bad("count negative", with_field("jsonPayload.count", -3), "bad_type", "got -3"),
    _bad("count a bool", with_field("jsonPayload.count", True), "bad_type", "got True"),
    _bad("count a string", with_field("jsonPayload.count", "5"), "bad_type", "got '5'"),
    _bad("count a float", with_field("jsonPayload.count", 1.5), "bad_type", "got 1.5"),
    _bad(
        "bad timestamp", with_field("timestamp", "yesterday"), "bad_timestamp", "'yesterday' is not RFC 3339"
    ),
    _bad("impossible date", with_field("timestamp", "2020-02-30T00:00:00Z"), "bad_timestamp", "not a valid"),
    _bad("timestamp a number", with_field("timestamp", 1592083822), "bad_type", "timestamp should be"),
    _bad(
        "no timestamp",
        without("timestamp", without("jsonPayload.timestamp")),
        "no_timestamp",
        "neither the LogEntry nor its payload has a timestamp",
    ),
    _bad("resource a string", with_field("resource", "k8s_node"), "bad_type", "resource should be an object"),
    _bad(
        "resource.labels not an object",
        with_field("resource.labels", ["demo"]),
        "bad_type",
        "resource.labels should be an object, got a list",
    ),
    _bad(
        "cluster_name not a string",
        with_field("resource.labels.cluster_name", 3),
        "bad_type",
        "resource.labels.cluster_name should be a string, got a number (3)",
    ),
    _bad(
        "src not an object",
        with_field("jsonPayload.src", "pod"),
        "bad_type",
        "src should be an object, got a string",
    ),
    _bad(
        "dest a list", with_field("jsonPayload.dest", []), "bad_type", "dest should be an object, got a list"
    ),
    _bad(
        "pod_name a number", with_field("jsonPayload.src.pod_name", 5), "bad_type", "src.pod_name should be"
    ),
    _bad("src_ip a number", with_field("jsonPayload.connection.src_ip", 1), "bad_type", "connection.src_ip"),
    _bad(
        "protocol a number",
        with_field("jsonPayload.connection.protocol", 6),
        "bad_type",
        "protocol should be",
    ),
    _bad("node_name a list", with_field("jsonPayload.node_name", []), "bad_type", "jsonPayload.node_name"),
    _bad("insertId a number", with_field("insertId", 5), "bad_type", "insertId should be a string"),
    _bad(
        "policies an object", with_field("jsonPayload.policies", {}), "bad_type", "policies should be a list"
    ),
    _bad("policy a string", with_field("jsonPayload.policies", ["np"]), "bad_type", "policies[] should be"),
    _bad("policy name", with_field("jsonPayload.policies", [{"name": 1}]), "bad_type", "policies[].name"),
    _bad(
        "push data not base64",
        {"message": {"data": "not base64!", "messageId": "1"}, "subscription": "s"},
        "bad_envelope",
        "not base64",
    ),
    _bad("push data not ASCII", {"message": {"data": "é"}}, "bad_envelope", "not base64"),
    _bad("push without data", {"message": {"messageId": "1"}}, "bad_envelope", "no message.data string"),
    _bad("push data a number", {"message": {"data": 5}}, "bad_envelope", "no message.data string"),
    _bad("push of non-JSON", push(b"plain text"), "not_json", "not JSON"),
    _bad("push of an array", push(b"[]"), "not_log_entry", "got a list"),
    _bad("push of another log", push(encode(without("logName"))), "wrong_log", "no logName"),
]


@pytest.mark.parametrize("bad", BAD, ids=[bad.name for bad in BAD])
def test_malformed_input_is_rejected_with_a_code_and_a_reason(bad: Bad) -> None:
    error = rejection(bad.data)
    assert error.code == bad.code
    assert bad.reason in error.reason
    assert str(error) == error.reason


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("null src", with_field("jsonPayload.src", None)),
        ("null policies", with_field("jsonPayload.policies", None)),
        ("null resource", with_field("resource", None)),
        ("empty policies", with_field("jsonPayload.policies", [])),
        ("policy without kind (old format)", with_field("jsonPayload.policies", [{"name": "np"}])),
        ("null ports", with_field("jsonPayload.connection.dest_port", None)),
        (
            "no connection ips",
            without("jsonPayload.connection.src_ip", without("jsonPayload.connection.dest_ip")),
        ),
    ],
)
def test_tolerated_gaps(name: str, entry: dict[str, Any]) -> None:
    assert isinstance(parse_or_reject(encode(entry)), PolicyEvent), name


# --------------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------------

FAST = settings(max_examples=200, deadline=None, database=None)

JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
# Values the parser's checks care about, mixed in so mutations hit the edges often.
EDGE_VALUES: st.SearchStrategy[Any] = st.sampled_from(
    [
        *(0, -1, 1, 65535, 65536, 2**63, 1.5, True, False, None, [], {}),
        *("", "0", "tcp", "ingress", "deny", "10.0.0.1", "2020-06-13T21:30:22Z"),
        *("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"),
    ]
)
ANY_VALUE = JSON_VALUES | EDGE_VALUES


def _optional_keys(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, values))


# LogEntry-shaped documents with arbitrary leaves: gets past the first checks far more often than
# arbitrary JSON does.
SHAPED_ENTRIES: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"logName": st.just(LOG_NAME) | ANY_VALUE},
    optional={
        "insertId": ANY_VALUE,
        "timestamp": ANY_VALUE,
        "resource": _optional_keys(["labels"], _optional_keys(["cluster_name", "node_name"], ANY_VALUE))
        | ANY_VALUE,
        "jsonPayload": st.fixed_dictionaries(
            {
                "connection": _optional_keys(
                    ["src_ip", "dest_ip", "src_port", "dest_port", "protocol", "direction"], ANY_VALUE
                )
                | ANY_VALUE
            },
            optional={
                "disposition": st.sampled_from(["allow", "deny"]) | ANY_VALUE,
                "src": _optional_keys(["pod_name", "namespace", "node_name", "instance"], ANY_VALUE)
                | ANY_VALUE,
                "dest": _optional_keys(["pod_name", "workload_kind", "instance"], ANY_VALUE) | ANY_VALUE,
                "count": ANY_VALUE,
                "policies": ANY_VALUE,
                "timestamp": ANY_VALUE,
                "node_name": ANY_VALUE,
            },
        ),
    },
)

Path = tuple[str | int, ...]


def paths(value: object, prefix: Path = ()) -> list[Path]:
    """Every key path inside nested dicts and lists."""
    children: list[tuple[str | int, object]]
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    else:
        return []
    found: list[Path] = []
    for key, child in children:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


@st.composite
def mutated_entries(draw: st.DrawFn) -> dict[str, Any]:
    """A sample entry with one to four nested fields deleted or replaced by arbitrary JSON."""
    entry = copy.deepcopy(in_envelope(draw(st.sampled_from(SAMPLES))))
    for _ in range(draw(st.integers(1, 4))):
        candidates = paths(entry)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent: Any = entry
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(ANY_VALUE)
    return entry


NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)
IPS = st.ip_addresses().map(str)


def _pod_side(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):  # the old format
        return {"pod_name": draw(NAMES), "pod_namespace": draw(NAMES)}
    return {
        "pod_name": draw(NAMES),
        "workload_kind": draw(
            st.sampled_from(["ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job"])
        ),
        "workload_name": draw(NAMES),
        "pod_namespace": draw(NAMES),
        "namespace": draw(NAMES),
    }


def _side(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["pod", "node", "ip"]))
    if kind == "pod":
        return _pod_side(draw)
    if kind == "node":
        return {"node_name": draw(NAMES), "workload_kind": "Node"}
    return {"instance": draw(IPS)}


@st.composite
def valid_entries(draw: st.DrawFn) -> tuple[dict[str, Any], datetime]:
    """A well-formed LogEntry in either payload format, and the instant its timestamp names."""
    moment = draw(st.datetimes(datetime(1970, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)))
    nanos = draw(st.integers(0, 999))
    connection: dict[str, Any] = {
        "src_ip": draw(IPS),
        "dest_ip": draw(IPS),
        "protocol": draw(st.sampled_from(["tcp", "udp", "icmp", "unknown", "sctp"])),
        "direction": draw(st.sampled_from(["ingress", "egress"])),
    }
    if connection["protocol"] in ("tcp", "udp"):
        connection["src_port"] = draw(st.integers(1, 65535))
        connection["dest_port"] = draw(st.integers(0, 65535))
    disposition = draw(st.sampled_from(["allow", "deny"]))
    payload: dict[str, Any] = {
        "connection": connection,
        "disposition": disposition,
        "src": _side(draw),
        "dest": _side(draw),
        "count": 1 if disposition == "allow" else draw(st.integers(1, 10_000)),
    }
    if disposition == "allow":
        payload["policies"] = [{"kind": "NetworkPolicy", "name": draw(NAMES), "namespace": draw(NAMES)}]
    if draw(st.booleans()):
        payload["node_name"] = draw(NAMES)
    entry = in_envelope(payload, insert_id=draw(st.text(min_size=1, max_size=20)))
    entry["timestamp"] = f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}{nanos:03d}Z"
    if draw(st.booleans()):
        del entry["insertId"]
    return entry, moment


@FAST
@given(st.binary(max_size=512))
def test_arbitrary_bytes_give_an_event_or_a_rejection(data: bytes) -> None:
    parse_or_reject(data)


@FAST
@given(JSON_VALUES)
def test_arbitrary_json_gives_an_event_or_a_rejection(value: Any) -> None:
    parse_or_reject(encode(value))
    parse_or_reject(push(encode(value)))


@FAST
@given(SHAPED_ENTRIES)
def test_entry_shaped_json_gives_an_event_or_a_rejection(entry: dict[str, Any]) -> None:
    parse_or_reject(encode(entry))


@FAST
@given(mutated_entries())
def test_mutated_entries_give_an_event_or_a_rejection(entry: dict[str, Any]) -> None:
    parse_or_reject(encode(entry))


@FAST
@given(valid_entries())
def test_valid_entries_parse_and_round_trip(generated: tuple[dict[str, Any], datetime]) -> None:
    entry, moment = generated
    event = parse(entry)
    check_invariants(event)  # includes event_to_record -> JSON -> event_from_record
    payload, connection = entry["jsonPayload"], entry["jsonPayload"]["connection"]
    assert event.timestamp == moment
    assert (event.direction, event.disposition, event.count) == (
        connection["direction"],
        payload["disposition"],
        payload["count"],
    )
    assert event.protocol == (connection["protocol"] if connection["protocol"] != "sctp" else "unknown")
    assert event.src_port == connection.get("src_port")
    assert event.dest_port == (connection.get("dest_port") or None)
    assert event.node == payload.get("node_name", NODE)
    assert event.insert_id == entry.get("insertId", event.insert_id)
    assert len(event.policies) == len(payload.get("policies", []))
    kinds: dict[str, Callable[[dict[str, Any]], bool]] = {
        "pod": lambda side: "pod_name" in side,
        "node": lambda side: "node_name" in side,
        "ip": lambda side: "instance" in side,
    }
    for endpoint, side in ((event.src, payload["src"]), (event.dest, payload["dest"])):
        assert kinds[endpoint.kind](side)
        if endpoint.kind == "pod":
            assert endpoint.namespace == side.get("namespace", side["pod_namespace"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("jsonPayload.count", 2**64),
        ("resource.labels.cluster_name", "\ud800"),
        ("jsonPayload.src.pod_name", "x\udfff"),
    ],
)
def test_values_no_store_could_keep_are_rejected_up_front(field: str, value: object) -> None:
    """A count past 32 bits or a lone surrogate would make the store refuse the whole batch."""
    with pytest.raises(RejectedEntry) as caught:
        parse_message(json.dumps(with_field(field, value)).encode())
    assert caught.value.code == "bad_type"


# --------------------------------------------------------------------------------------------------
# The long-lived parser ingest uses: orjson, and memos shared across messages
# --------------------------------------------------------------------------------------------------

#: One parser for every example below, as ingest keeps one for its lifetime: whatever earlier
#: examples left in its memos must never change a later answer. A tiny memo also exercises clearing.
SHARED = entry_parser(NETWORKS)
SMALL_MEMO = EntryParser(NETWORKS, loads=orjson.loads, memo_size=3)
SMALL_MEMO_FAST = FastEntryParser(NETWORKS, loads=orjson.loads, memo_size=3)


def outcome(parse_with: Callable[[bytes], PolicyEvent], data: bytes) -> PolicyEvent | tuple[str, str]:
    try:
        return parse_with(data)
    except RejectedEntry as error:
        return (error.code, error.reason)


def assert_same_as_a_fresh_stdlib_parse(data: bytes) -> None:
    expected = outcome(lambda body: parse_message(body, NETWORKS), data)
    assert outcome(SHARED.parse, data) == expected
    assert outcome(SMALL_MEMO.parse, data) == expected
    assert outcome(SMALL_MEMO_FAST.parse, data) == expected


@pytest.mark.parametrize("bad", BAD, ids=lambda bad: bad.name)
def test_the_long_lived_parser_rejects_alike(bad: Bad) -> None:
    assert_same_as_a_fresh_stdlib_parse(bad.data)


@FAST
@given(mutated_entries())
def test_the_long_lived_parser_agrees_on_mutated_entries(entry: dict[str, Any]) -> None:
    assert_same_as_a_fresh_stdlib_parse(encode(entry))
    assert_same_as_a_fresh_stdlib_parse(push(encode(entry)))


@FAST
@given(valid_entries())
def test_the_long_lived_parser_agrees_on_valid_entries(generated: tuple[dict[str, Any], datetime]) -> None:
    assert_same_as_a_fresh_stdlib_parse(encode(generated[0]))


@FAST
@given(st.binary(max_size=512))
def test_the_long_lived_parser_agrees_on_arbitrary_bytes(data: bytes) -> None:
    assert_same_as_a_fresh_stdlib_parse(data)


def test_the_memo_follows_each_value_not_the_first_one_seen() -> None:
    """Entries that differ only in one endpoint field, one timestamp fraction or one label."""
    first = with_field("jsonPayload.src.pod_name", "web-7d4b9c8f6d-abcde")
    variants = [
        first,
        with_field("jsonPayload.src.pod_name", "web-7d4b9c8f6d-vwxyz"),
        with_field("jsonPayload.src.namespace", "other", first),
        with_field("jsonPayload.connection.src_ip", "10.9.9.9", first),
        with_field("timestamp", "2026-02-01T10:00:00.5Z", first),
        with_field("timestamp", "2026-02-01T10:00:00.000001Z", first),
        with_field("resource.labels.cluster_name", "other-cluster", first),
        with_field("jsonPayload.node_name", "other-node", first),
    ]
    for entry in variants + variants:
        assert_same_as_a_fresh_stdlib_parse(encode(entry))


@pytest.mark.parametrize(
    "field",
    ["insertId", "jsonPayload.count", "jsonPayload.connection.dest_port", "resource.labels.cluster_name"],
)
@pytest.mark.parametrize("value", [2**64, -(2**63) - 1])
def test_integers_past_64_bits_are_rejected_in_the_same_words(field: str, value: int) -> None:
    """orjson reads them as floats; the rejection must still say what a fresh stdlib parse says."""
    assert_same_as_a_fresh_stdlib_parse(encode(with_field(field, value)))


class CountingParser(FastEntryParser):
    """Counts the messages that went the full way."""

    full = 0

    def _parse(self, data: bytes, *, strict: bool) -> PolicyEvent:
        self.full += 1
        return super()._parse(data, strict=strict)


def test_the_usual_entries_take_the_fast_path_after_their_log_name() -> None:
    parser = CountingParser(NETWORKS, loads=orjson.loads)
    parser.parse(encode(BASE))
    second = parser.parse(encode(with_field("insertId", "another")))
    third = parser.parse(encode(with_field("insertId", "third")))
    assert parser.full == 1  # the first of each logName is checked the full way, once
    assert second.insert_id == "another"
    assert third.src is second.src  # endpoints are shared, as the fold expects
    assert second == parse_message(encode(with_field("insertId", "another")), NETWORKS)


@pytest.mark.parametrize(
    "data",
    [
        # msgspec skips unknown fields without checking their UTF-8 or their numbers' size; the
        # standard library refuses the whole message.
        encode(BASE)[:-1] + b',"extra":"caf\xe9"}',
        encode(BASE)[:-1] + b',"extra":' + b"9" * 5_000 + b"}",
        encode(BASE)[:-1] + b',"extra":' + b"[" * 3_000 + b"]" * 3_000 + b"}",
        # An entry that is also a push envelope is unwrapped, whatever else it holds.
        encode(
            with_field(
                "message", {"data": base64.b64encode(encode(with_field("insertId", "inner"))).decode()}
            )
        ),
        # Values the fast path leaves to the full one, which normalizes or refuses them.
        encode(with_field("jsonPayload.connection.protocol", "TCP")),
        encode(with_field("jsonPayload.connection.direction", "INGRESS")),
        encode(with_field("jsonPayload.connection.dest_port", 0)),
        encode(with_field("jsonPayload.count", True)),
        encode(with_field("jsonPayload.count", 2.0)),
        encode(with_field("timestamp", "2026-02-01T10:00:00.9999999+01:00")),
        encode(with_field("insertId", "")),
        encode(with_field("jsonPayload.src.namespace", "caf\u00e9")),
        encode(with_field("jsonPayload.src.pod_name", "x\udfff")),
        encode(with_field("jsonPayload.src", [])),
        encode(with_field("resource.labels.cluster_name", "c" * FAST_MAX_BYTES)),
        b"\xef\xbb\xbf" + encode(BASE),
    ],
)
def test_what_the_fast_path_leaves_gets_the_full_answer(data: bytes) -> None:
    SHARED.parse(encode(BASE))  # its logName is known: the fast path is open
    assert_same_as_a_fresh_stdlib_parse(data)


def test_the_fast_path_reads_a_storm_as_the_full_parser_does() -> None:
    """The bench's storm: every payload format, endpoint kind and protocol, redeliveries."""
    fast, full = FastEntryParser(NETWORKS, loads=orjson.loads), EntryParser(NETWORKS, loads=orjson.loads)
    bodies = list(itertools.islice(storm(StormShape(entries=3_000, flows=500, namespaces=50)), 3_000))
    assert [fast.parse(body) for body in bodies] == [full.parse(body) for body in bodies]
