"""Cloud Logging filters (`bot.core.logquery`), pure:

- `history_filter`: the exact text for no option, each option alone (cluster, policed namespace,
  port, protocol, src and dst globs of every shape: a namespace part without wildcards, `node/…`,
  an address, wildcards, a network's name) and all of them together; the timestamp bounds always
  written, widened to whole seconds, in UTC; values quoted;
- that it is a superset: for generated GKE-shaped entries (pods of both payload formats, nodes,
  bare and named addresses, `networks` names with a slash, any case of protocol) and flow filters
  made to match each (every option left out or set from the entry's flow, globs of every shape),
  the entry passes the filter, as the fake Cloud Logging's reading of the language evaluates it;
- `history_url`: the Logs Explorer link of that filter;
- `deny_filter` unchanged by sharing the policed-namespace condition; an empty label (the group of
  denies whose policed endpoint has no namespace: a node, an address) asks for the field's absence,
  so the link shows that group's denies, not every deny of the cluster: for generated entries,
  the filter of the entry's own group labels keeps it, and a no-namespace filter keeps nothing
  whose policed endpoint is a pod.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.events import NetworkNames, RejectedEntry, parse_entry
from bot.core.history import FlowFilter, roll_up
from bot.core.logquery import deny_filter, explorer_url, history_filter, history_url
from bot.core.routing import FIELD_READERS
from tests.fakes.logging import compile_filter

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
END = datetime(2026, 3, 2, 10, 25, 10, tzinfo=UTC)
BASE = """resource.type="k8s_node"
logName="projects/acme/logs/policy-action"
jsonPayload.disposition="deny"
"""
BOUNDS = """timestamp>="2026-03-02T08:00:00Z"
timestamp<"2026-03-02T10:25:10Z\""""
POLICED_PAYMENTS = (
    '((jsonPayload.connection.direction="ingress" AND jsonPayload.dest.pod_namespace="payments")'
    ' OR (jsonPayload.connection.direction="egress" AND jsonPayload.src.pod_namespace="payments"))'
)
SRC_CHECKOUT = '(jsonPayload.src.pod_namespace="checkout" OR NOT jsonPayload.src.pod_name:*)'


def conditions(flow_filter: FlowFilter) -> list[str]:
    """The lines between the fixed head and the timestamp bounds."""
    text = history_filter("acme", flow_filter, START, END)
    assert text.startswith(BASE)
    assert text.endswith(BOUNDS)
    middle = text.removeprefix(BASE).removesuffix(BOUNDS)
    return middle.splitlines()


def test_no_option_names_the_denies_and_the_window() -> None:
    assert history_filter("acme", FlowFilter(), START, END) == BASE + BOUNDS


@pytest.mark.parametrize(
    ("flow_filter", "expected"),
    [
        (FlowFilter(cluster="prod"), ['resource.labels.cluster_name="prod"']),
        (FlowFilter(namespace="payments"), [POLICED_PAYMENTS]),
        (FlowFilter(port=443), ["jsonPayload.connection.dest_port=443"]),
        # 0 is "no port", which entries say by leaving the field out
        (FlowFilter(port=0), []),
        (FlowFilter(protocol="tcp"), ['jsonPayload.connection.protocol="tcp"']),
        (FlowFilter(protocol="udp"), ['jsonPayload.connection.protocol="udp"']),
        (FlowFilter(protocol="icmp"), ['jsonPayload.connection.protocol="icmp"']),
        # `unknown` is every other value, or none: no one value to name
        (FlowFilter(protocol="unknown"), []),
        (FlowFilter(protocol="sctp"), []),
    ],
    ids=["cluster", "namespace", "port", "port-0", "tcp", "udp", "icmp", "unknown", "other-protocol"],
)
def test_each_field_option(flow_filter: FlowFilter, expected: list[str]) -> None:
    assert conditions(flow_filter) == expected


@pytest.mark.parametrize(
    ("glob", "expected"),
    [
        # a namespace part without wildcards: pods of that namespace, or endpoints that are no pod
        ("checkout/*", [SRC_CHECKOUT]),
        ("checkout/web", [SRC_CHECKOUT]),
        ("checkout/w?b", [SRC_CHECKOUT]),
        ("checkout/[wx]eb", [SRC_CHECKOUT]),
        # `node/…` is a node's label, but also a pod's in a namespace called `node`
        ("node/gke-*", ['(jsonPayload.src.pod_namespace="node" OR NOT jsonPayload.src.pod_name:*)']),
        # an address: the connection's, or the endpoint's `instance`
        (
            "10.0.0.7",
            ['(jsonPayload.connection.src_ip="10.0.0.7" OR jsonPayload.src.instance="10.0.0.7")'],
        ),
        (
            "fd00::7",
            ['(jsonPayload.connection.src_ip="fd00::7" OR jsonPayload.src.instance="fd00::7")'],
        ),
        # nothing safe to say
        ("*", []),
        ("*/web", []),
        ("check*/web", []),
        ("?/web", []),
        ("[ab]/web", []),
        ("10.0.0.*", []),
        ("metadata-server", []),
        ("corp (10.0.0.7)", []),
        ("/web", []),
    ],
)
def test_src_globs(glob: str, expected: list[str]) -> None:
    assert conditions(FlowFilter(src=glob)) == expected


def test_dst_globs_name_the_destination() -> None:
    assert conditions(FlowFilter(dst="payments/api")) == [
        '(jsonPayload.dest.pod_namespace="payments" OR NOT jsonPayload.dest.pod_name:*)'
    ]
    assert conditions(FlowFilter(dst="169.254.169.254")) == [
        '(jsonPayload.connection.dest_ip="169.254.169.254" OR jsonPayload.dest.instance="169.254.169.254")'
    ]
    assert conditions(FlowFilter(dst="payments*")) == []


def test_every_option_together_in_a_fixed_order() -> None:
    flow_filter = FlowFilter(
        cluster="prod", namespace="payments", src="checkout/*", dst="payments/api", port=443, protocol="tcp"
    )
    assert history_filter("acme", flow_filter, START, END) == (
        BASE
        + 'resource.labels.cluster_name="prod"\n'
        + POLICED_PAYMENTS
        + "\n"
        + "jsonPayload.connection.dest_port=443\n"
        + 'jsonPayload.connection.protocol="tcp"\n'
        + SRC_CHECKOUT
        + "\n"
        + '(jsonPayload.dest.pod_namespace="payments" OR NOT jsonPayload.dest.pod_name:*)\n'
        + BOUNDS
    )


def test_values_are_quoted() -> None:
    flow_filter = FlowFilter(cluster='pr"od\\1', src='a"b/*')
    assert conditions(flow_filter) == [
        'resource.labels.cluster_name="pr\\"od\\\\1"',
        '(jsonPayload.src.pod_namespace="a\\"b" OR NOT jsonPayload.src.pod_name:*)',
    ]


@pytest.mark.parametrize(
    ("start", "end", "bounds"),
    [
        # widened to whole seconds: the start down, the end up
        (
            START + timedelta(microseconds=999_999),
            END + timedelta(microseconds=1),
            ('timestamp>="2026-03-02T08:00:00Z"', 'timestamp<"2026-03-02T10:25:11Z"'),
        ),
        # another offset is written in UTC
        (
            START.astimezone(timezone(timedelta(hours=2))),
            END.astimezone(timezone(timedelta(hours=-5))),
            ('timestamp>="2026-03-02T08:00:00Z"', 'timestamp<"2026-03-02T10:25:10Z"'),
        ),
        # naive times are UTC, as everywhere in the core
        (
            START.replace(tzinfo=None),
            END.replace(tzinfo=None),
            ('timestamp>="2026-03-02T08:00:00Z"', 'timestamp<"2026-03-02T10:25:10Z"'),
        ),
    ],
    ids=["whole-seconds", "offsets", "naive"],
)
def test_the_bounds(start: datetime, end: datetime, bounds: tuple[str, str]) -> None:
    assert history_filter("acme", FlowFilter(), start, end).splitlines()[-2:] == list(bounds)


def test_history_url_opens_the_filter_in_logs_explorer() -> None:
    flow_filter = FlowFilter(cluster="prod", src="checkout/*")
    url = history_url("acme", flow_filter, START, END)

    assert url == explorer_url("acme", history_filter("acme", flow_filter, START, END), START, END)
    assert url.startswith("https://console.cloud.google.com/logs/query;query=")
    assert url.endswith("?project=acme")
    assert 'resource.labels.cluster_name="prod"' in unquote(url)


def test_deny_filter_is_unchanged() -> None:
    since = datetime(2026, 3, 2, 9, 59, 30, tzinfo=UTC)
    labels = [("cluster", "prod"), ("namespace", "payments"), ("dest_port", "443"), ("node", "")]
    assert deny_filter("acme", labels, since) == (
        BASE
        + 'resource.labels.cluster_name="prod"\n'
        + POLICED_PAYMENTS
        + "\n"
        + 'jsonPayload.connection.dest_port="443"\n'
        + 'timestamp>="2026-03-02T09:59:30Z"'
    )


def test_an_empty_namespace_asks_for_denies_without_one() -> None:
    since = datetime(2026, 3, 2, 9, 59, 30, tzinfo=UTC)
    labels = [("cluster", "prod"), ("namespace", ""), ("dest_namespace", ""), ("dest_port", "")]
    assert deny_filter("acme", labels, since) == (
        BASE
        + 'resource.labels.cluster_name="prod"\n'
        + '((jsonPayload.connection.direction="ingress" AND NOT jsonPayload.dest.pod_namespace:*)'
        + ' OR (jsonPayload.connection.direction="egress" AND NOT jsonPayload.src.pod_namespace:*))\n'
        + "NOT jsonPayload.dest.pod_namespace:*\n"
        + "NOT jsonPayload.connection.dest_port:*\n"
        + 'timestamp>="2026-03-02T09:59:30Z"'
    )


# -- the superset property

NETWORKS = NetworkNames.from_mapping({"10.0.0.0/24": "corp", "192.168.1.0/24": "payments/db"})
IPS = ["10.0.0.7", "192.168.1.5", "172.16.0.1", "172.16.0.2", "fd00::7"]
NAMESPACES = ["payments", "checkout", "node"]


@st.composite
def endpoints(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["pod", "old-pod", "node", "bare-node", "instance", "nothing"]))
    namespace = draw(st.sampled_from(NAMESPACES))
    workload = draw(st.sampled_from(["api", "web", "db"]))
    if kind == "pod":
        return {
            "pod_name": f"{workload}-7b78d7c957-zkn54",
            "pod_namespace": namespace,
            "namespace": namespace,
            "workload_kind": "ReplicaSet",
            "workload_name": f"{workload}-7b78d7c957",
        }
    if kind == "old-pod":
        return {"pod_name": f"{workload}-7b78d7c957-zkn54", "pod_namespace": namespace}
    if kind == "node":
        return {"node_name": "gke-a", "workload_kind": "Node"}
    if kind == "bare-node":
        return {"workload_kind": "Node"}
    if kind == "instance":
        return {"instance": draw(st.sampled_from(IPS))}
    return {}


@st.composite
def entries(draw: st.DrawFn) -> dict[str, Any]:
    connection: dict[str, Any] = {
        "src_ip": draw(st.sampled_from(IPS)),
        "dest_ip": draw(st.sampled_from(IPS)),
        "direction": draw(st.sampled_from(["ingress", "egress"])),
    }
    protocol = draw(st.sampled_from([None, "tcp", "TCP", "udp", "icmp", "sctp"]))
    if protocol:
        connection["protocol"] = protocol
    port = draw(st.sampled_from([None, 53, 443]))
    if port:
        connection["dest_port"] = port
    seconds = draw(st.integers(0, int((END - START).total_seconds()) - 1))
    return {
        "insertId": "e1",
        "logName": "projects/acme/logs/policy-action",
        "timestamp": (START + timedelta(seconds=seconds, microseconds=draw(st.integers(0, 999_999))))
        .isoformat()
        .replace("+00:00", "Z"),
        "resource": {
            "type": "k8s_node",
            "labels": {"project_id": "acme", "cluster_name": draw(st.sampled_from(["prod", "Prod", "dev"]))},
        },
        "jsonPayload": {
            "connection": connection,
            "disposition": "deny",
            "src": draw(endpoints()),
            "dest": draw(endpoints()),
            "count": 1,
        },
    }


def globs_for(label: str) -> list[str | None]:
    """Globs that match `label`, of every shape `history_filter` treats apart."""
    namespace, slash, name = label.partition("/")
    globs: list[str | None] = [None, label, "*", label[:3] + "*", "?" + label[1:], f"*{label[-2:]}"]
    if slash:
        globs += [f"{namespace}/*", f"{namespace}/{name[:1]}*", f"[{namespace[0]}]{namespace[1:]}/*"]
    return globs


@settings(max_examples=500, deadline=None, database=None)
@given(entries(), st.data())
def test_the_filter_never_leaves_out_an_entry_the_flow_filter_keeps(
    entry: dict[str, Any], data: st.DataObject
) -> None:
    try:
        event = parse_entry(entry, NETWORKS)
    except RejectedEntry:
        return
    (key, cell), *_ = roll_up([event]).items()
    # Each option is left out or set to something this entry's flow matches.
    flow_filter = FlowFilter(
        cluster=data.draw(st.sampled_from([None, key.cluster])),
        namespace=data.draw(st.sampled_from([None, cell.namespace])),
        src=data.draw(st.sampled_from(globs_for(key.source))),
        dst=data.draw(st.sampled_from(globs_for(key.destination))),
        port=data.draw(st.sampled_from([None, key.dest_port])),
        protocol=data.draw(st.sampled_from([None, key.protocol])),
    )
    assert flow_filter.matches(key, cell.namespace)

    assert compile_filter(history_filter("acme", flow_filter, START, END))(entry)


def test_times_in_another_zone_are_written_in_utc() -> None:
    berlin = timezone(timedelta(hours=1))
    since = datetime(2026, 11, 3, 10, 0, tzinfo=berlin)
    assert 'timestamp>="2026-11-03T09:00:00Z"' in deny_filter("acme", (), since)
    url = explorer_url("acme", "q", since, since + timedelta(hours=1))
    assert "timeRange=2026-11-03T08%3A59%3A00Z%2F2026-11-03T10%3A01%3A00Z" in url


GROUP_LABELS = ("cluster", "namespace", "src_namespace", "dest_namespace", "dest_port", "node")


@settings(max_examples=300, deadline=None, database=None)
@given(entries(), st.lists(st.sampled_from(GROUP_LABELS), min_size=1, max_size=4, unique=True))
def test_an_alert_link_finds_the_denies_of_its_group(entry: dict[str, Any], group_by: list[str]) -> None:
    try:
        event = parse_entry(entry, NETWORKS)
    except RejectedEntry:
        return
    labels = [(name, FIELD_READERS[name](event) or "") for name in group_by]
    assert compile_filter(deny_filter("acme", labels, START))(entry)
    if event.namespace:  # the policed endpoint is a pod: not in the group without a namespace
        assert not compile_filter(deny_filter("acme", [("namespace", "")], START))(entry)
