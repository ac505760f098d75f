"""The store's records (`bot.adapters.store.records`): every outbox message kind through one codec
(the stored `kind` column is the message's kind, and the store hands back typed messages); a group
record with its header and flows as separate parts; and event rows that keep today's exact JSON
(old rows read unchanged, re-encoding gives the same bytes)."""

from __future__ import annotations

import json
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.adapters.store import Store
from bot.adapters.store.database import dumps
from bot.adapters.store.records import (
    decode_event,
    decode_group,
    decode_group_header,
    decode_message,
    encode_event,
    encode_group,
    encode_group_header,
    encode_message,
    event_from_record,
    event_to_record,
)
from bot.core.audit import AuditEntry
from bot.core.events import Endpoint, Policy, PolicyEvent
from bot.core.grouping import FlowKey, FlowStats, FlowSummary, Group, GroupKey, Notification
from bot.core.outbox import AlertEdit, AlertPost, AuditLine, OutboxMessage, ThreadReply, alert_message

T0 = datetime(2026, 1, 15, 10, 2, 15, 158588, tzinfo=UTC)
FLOW = FlowKey("prod-eu", "ingress", "checkout/web", "payments/api", 8080, "tcp")
ICMP = FlowKey("prod-eu", "ingress", "checkout/web", "payments/db", None, "icmp")
KEY = GroupKey("#payments-oncall", 0, (("cluster", "prod-eu"), ("namespace", "payments")))


def notification(kind: str = "update") -> Notification:
    return Notification(
        kind=kind,  # type: ignore[arg-type]  # every kind in turn
        group_id=f"b0f08e6c8d9c0979@{T0.isoformat()}",
        group_key=KEY.encode(),
        channel="#payments-oncall",
        labels=KEY.labels,
        at=T0 + timedelta(minutes=4),
        project="demo-project",
        total=2645,
        flow_count=2,
        other_count=7,
        nodes=("n1", "n2"),
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=3),
        top_flows=(FlowSummary(FLOW, 2639, T0, T0 + timedelta(minutes=3)),),
        more_flows=1,
        new_flows=(FlowSummary(ICMP, 6, T0 + timedelta(minutes=2), T0 + timedelta(minutes=2)),),
    )


ENTRY = AuditEntry(T0, "U0OP", "enable", "applied", "/netlog enable prod-eu", "prod-eu", "off", "on")
MESSAGES: list[OutboxMessage] = [
    AlertPost(notification("open")),
    AlertPost(notification("repeat")),
    AlertEdit(notification("update")),
    AlertEdit(notification("resolve")),
    ThreadReply(notification("update")),
    AuditLine("#netlog-audit", "0123abcd", ENTRY),
    AuditLine("#netlog-audit", "x", AuditEntry(T0, "U0X", "mute", "refused", "button")),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda message: message.kind)
def test_every_message_kind_goes_through_one_codec(message: OutboxMessage) -> None:
    text = encode_message(message)
    assert json.loads(text)["kind"] == message.kind
    again = decode_message(text)
    assert again == message
    assert type(again) is type(message)


def test_the_grouper_s_notifications_become_posts_and_edits() -> None:
    kinds = {
        kind: type(alert_message(notification(kind))) for kind in ("open", "repeat", "update", "resolve")
    }
    assert kinds == {"open": AlertPost, "repeat": AlertPost, "update": AlertEdit, "resolve": AlertEdit}


def test_decoded_times_stay_aware_and_keep_the_instant() -> None:
    message = AlertEdit(notification())
    again = decode_message(encode_message(message))
    assert isinstance(again, AlertEdit)
    assert again.notification.at.utcoffset() == timedelta(0)
    assert again.notification.at == message.notification.at


def group() -> Group:
    return Group(
        key=KEY.encode(),
        channel=KEY.channel,
        labels=KEY.labels,
        started_at=T0,
        first_seen=T0 - timedelta(seconds=15),
        last_seen=T0 + timedelta(minutes=3),
        last_activity=T0 + timedelta(minutes=3),
        project="demo-project",
        total=1969,
        other_count=4,
        flows={
            FLOW: FlowStats(1966, T0, T0 + timedelta(minutes=3), announced=True),
            ICMP: FlowStats(3, T0 + timedelta(minutes=1), T0 + timedelta(minutes=1)),
        },
        nodes={"n1", "n2"},
        notified_at=T0 + timedelta(minutes=2),
        announced_at=T0 + timedelta(seconds=30),
        notified_total=1426,
    )


def test_a_group_record_keeps_the_header_and_the_flows_apart() -> None:
    record = json.loads(encode_group(group()))
    assert set(record) == {"group", "flows"}
    assert "flows" not in record["group"]
    assert record["group"]["key"] == KEY.encode()
    assert [flow[0]["dest_port"] for flow in record["flows"]] == [8080, None]
    assert record["flows"][0][1] == {
        "count": 1966,
        "first_seen": "2026-01-15T10:02:15.158588Z",
        "last_seen": "2026-01-15T10:05:15.158588Z",
        "announced": True,
    }


def test_a_group_reads_back_equal_and_keeps_its_message() -> None:
    again = decode_group(encode_group(group()))
    assert again == group()
    assert again.group_id == group().group_id == f"{again.group_id.split('@')[0]}@{T0.isoformat()}"
    unopened = Group(KEY.encode(), KEY.channel, KEY.labels, T0, T0, T0, T0)
    assert decode_group(encode_group(unopened)) == unopened


def test_the_store_keeps_the_message_kind_and_hands_back_typed_messages(store: Store) -> None:
    for message in MESSAGES:
        store.outbox.enqueue(message, T0)
    assert [item.message for item in store.outbox.pending()] == MESSAGES
    with store.db.engine.connect() as conn:
        kinds = conn.execute(sa.text("SELECT kind FROM outbox ORDER BY id")).scalars().all()
    assert kinds == [message.kind for message in MESSAGES]


def test_a_delivered_alert_queues_its_thread_reply_in_the_same_transaction(store: Store) -> None:
    post = AlertEdit(notification())
    store.outbox.enqueue(post, T0)
    [item] = store.outbox.pending()
    reply = ThreadReply(post.notification)
    store.outbox.complete([item.id], T0, message=(post.group_id, "C0PAY", "1.0001"), follow_up=reply)
    assert [item.message for item in store.outbox.pending()] == [reply]
    assert store.outbox.message_for(post.group_id) == ("C0PAY", "1.0001")


# -- events: today's JSON, unchanged ------------------------------------------------------------

# Rows as main ae4010f stored them (tests/samples.py entries through `parse_message`).
OLD_EVENT_ROWS = [
    '{"insert_id":"abc123def456","timestamp":"2020-06-13T21:29:31.445836+00:00","direction":"ingress",'
    '"disposition":"allow","protocol":"tcp","src":{"kind":"pod","ip":"10.84.1.7","namespace":"default",'
    '"pod":"client-allow-7b78d7c957-zkn54","workload":"client-allow","workload_kind":"Deployment"},'
    '"dest":{"kind":"pod","ip":"10.84.0.11","namespace":"default","pod":"test-service-745c798fc9-hzpxt",'
    '"workload":"test-service","workload_kind":"Deployment"},"count":1,"src_port":55644,"dest_port":8080,'
    '"cluster":"demo","location":"us-central1","project":"my-project",'
    '"node":"gke-demo-default-pool-e8df3298-412p","policies":[["NetworkPolicy","np","default"]]}',
    '{"insert_id":"abc123def456","timestamp":"2020-06-13T21:32:00+00:00","direction":"ingress",'
    '"disposition":"deny","protocol":"tcp","src":{"kind":"pod","ip":"10.84.1.6","namespace":"default",'
    '"pod":"client-deny-5689846f5b-cqqsj","workload":"client-deny","workload_kind":"Deployment"},'
    '"dest":{"kind":"node","ip":"10.128.0.9","workload_kind":"Node","node":"gke-demo-default-pool-e8df3298-412p"},'
    '"count":1,"src_port":45084,"dest_port":22,"cluster":"demo","location":"us-central1",'
    '"project":"my-project","node":"gke-demo-default-pool-e8df3298-412p","policies":[]}',
    '{"insert_id":"abc123def456","timestamp":"2020-06-13T21:32:00+00:00","direction":"egress",'
    '"disposition":"allow","protocol":"udp","src":{"kind":"pod","ip":"10.84.1.6","namespace":"default",'
    '"pod":"client-allow-ffdfccbd5-d4cqp","workload":"client-allow","workload_kind":"Deployment"},'
    '"dest":{"kind":"ip","ip":"169.254.169.254","network":"metadata-server"},"count":1,"src_port":45084,'
    '"dest_port":53,"cluster":"demo","location":"us-central1","project":"my-project",'
    '"node":"gke-demo-default-pool-e8df3298-412p","policies":[["FQDNNetworkPolicy","client-allow","default"]]}',
]


def test_an_event_row_in_today_s_shape_reads_as_the_same_event() -> None:
    event = event_from_record(json.loads(OLD_EVENT_ROWS[2]))
    assert event == PolicyEvent(
        insert_id="abc123def456",
        timestamp=datetime(2020, 6, 13, 21, 32, tzinfo=UTC),
        direction="egress",
        disposition="allow",
        protocol="udp",
        src=Endpoint(
            "pod",
            ip="10.84.1.6",
            namespace="default",
            pod="client-allow-ffdfccbd5-d4cqp",
            workload="client-allow",
            workload_kind="Deployment",
        ),
        dest=Endpoint("ip", ip="169.254.169.254", network="metadata-server"),
        count=1,
        src_port=45084,
        dest_port=53,
        cluster="demo",
        location="us-central1",
        project="my-project",
        node="gke-demo-default-pool-e8df3298-412p",
        policies=(Policy("FQDNNetworkPolicy", "client-allow", "default"),),
    )


@pytest.mark.parametrize("row", OLD_EVENT_ROWS)
def test_every_stored_shape_reads_alike_by_both_decoders(row: str) -> None:
    assert decode_event(row) == event_from_record(json.loads(row))


def test_a_record_the_fast_decoder_cannot_type_is_read_the_general_way() -> None:
    # A value outside the ones the fast decoder types (the parser writes no other protocol today).
    record = json.loads(OLD_EVENT_ROWS[2]) | {"protocol": "sctp"}
    assert decode_event(json.dumps(record)).protocol == "sctp"
    assert decode_event(json.dumps(record)) == event_from_record(record)


def test_an_endpoint_the_fast_decoder_cannot_type_is_read_the_general_way() -> None:
    # The endpoints are typed apart from the event (their bytes key a memo): a kind outside the
    # three the parser writes still reads, as the general decoder reads it.
    record = json.loads(OLD_EVENT_ROWS[2])
    record["dest"] = {"kind": "service", "ip": "10.0.0.9"}
    assert str(decode_event(json.dumps(record)).dest.kind) == "service"
    assert decode_event(json.dumps(record)) == event_from_record(record)


def test_equal_endpoints_decode_to_one_object_whatever_the_event() -> None:
    first, second = json.loads(OLD_EVENT_ROWS[2]), json.loads(OLD_EVENT_ROWS[2])
    second["insert_id"] = "another"
    a, b = decode_event(json.dumps(first)), decode_event(json.dumps(second).encode())
    assert a.src is b.src
    assert a.dest is b.dest


@pytest.mark.parametrize("row", OLD_EVENT_ROWS)
def test_an_event_row_written_again_is_byte_identical(row: str) -> None:
    assert dumps(event_to_record(event_from_record(json.loads(row)))) == row


@pytest.mark.parametrize("row", OLD_EVENT_ROWS)
def test_the_event_encoder_writes_what_the_general_one_writes(row: str) -> None:
    event = event_from_record(json.loads(row))
    assert encode_event(event) == dumps(event_to_record(event)) == row
    assert encode_event(event) == row  # the second time from its endpoints' memo


def test_an_endpoint_s_memo_never_answers_for_another_endpoint() -> None:
    # Memoized by id: an id freed and reused by a different endpoint must not get the old JSON.
    for n in range(2_000):
        event = event_from_record(json.loads(OLD_EVENT_ROWS[2]))
        moved = replace(event, src=Endpoint("ip", ip=f"10.9.{n // 256}.{n % 256}"))
        assert json.loads(encode_event(moved))["src"] == {"kind": "ip", "ip": f"10.9.{n // 256}.{n % 256}"}


def test_the_endpoint_memo_holds_each_endpoint_s_json_compactly() -> None:
    # orjson's bytes keep their 4 kB write buffer: 2,000 of them held would be 8 MB.
    event = event_from_record(json.loads(OLD_EVENT_ROWS[2]))
    moved = [replace(event, src=Endpoint("ip", ip=f"10.8.{n // 256}.{n % 256}")) for n in range(2_000)]
    tracemalloc.start()
    try:
        for each in moved:
            encode_event(each)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 1_000_000


def test_a_group_header_reads_back_equal_without_its_flows() -> None:
    header = replace(group(), flows={})
    assert decode_group_header(encode_group_header(group())) == header
    assert json.loads(encode_group_header(group()))["nodes"] == ["n1", "n2"]
    unopened = Group(KEY.encode(), KEY.channel, KEY.labels, T0, T0, T0, T0)
    assert decode_group_header(encode_group_header(unopened)) == unopened
