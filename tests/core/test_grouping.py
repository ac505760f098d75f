"""Grouping: Alertmanager-style timing (wait, interval, resolve, repeat), routing into groups, caps,
and the promise that every folded count shows up in a notification. All pure, with explicit `now`;
the persistence tests go through the store's codecs (`bot.adapters.store.records`) as a restart does."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.adapters.store.records import decode_group, decode_message, encode_group, encode_message
from bot.core.events import Endpoint, PolicyEvent
from bot.core.grouping import Grouper, GroupingPolicy, GroupKey, Notification
from bot.core.outbox import AlertPost
from bot.core.routing import Route, RoutingTable

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
POLICY = GroupingPolicy(
    group_by=("cluster", "namespace"),
    group_wait=timedelta(seconds=30),
    group_interval=timedelta(minutes=1),
    resolve_after=timedelta(minutes=15),
    repeat_interval=timedelta(hours=4),
    max_flows_shown=3,
    max_flows_tracked=5,
)
ROUTING = RoutingTable((Route((("namespace", "payments*"),), "#payments"),), "#default")
_serial = iter(range(1_000_000))


def deny(
    at: datetime,
    *,
    namespace: str = "payments",
    source: str = "web",
    port: int | None = 8080,
    count: int = 1,
    cluster: str = "prod",
    node: str = "node-a",
    direction: str = "ingress",
    disposition: str = "deny",
) -> PolicyEvent:
    src = Endpoint("pod", ip="10.0.0.1", namespace="checkout", workload=source)
    dest = Endpoint("pod", ip="10.0.0.2", namespace=namespace, workload="api")
    if direction == "egress":
        src, dest = dest, Endpoint("ip", ip="203.0.113.7")
    return PolicyEvent(
        insert_id=f"id{next(_serial)}",
        timestamp=at,
        direction="ingress" if direction == "ingress" else "egress",
        disposition=disposition,
        protocol="tcp" if port else "icmp",
        src=src,
        dest=dest,
        count=count,
        dest_port=port,
        cluster=cluster,
        node=node,
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(
    grouper: Grouper, timeline: list[tuple[float, PolicyEvent | None]]
) -> list[tuple[float, Notification]]:
    """Folds each event at its time and ticks at every listed time; returns (time, notification)."""
    out: list[tuple[float, Notification]] = []
    for seconds, event in timeline:
        if event is not None:
            grouper.fold(event, at(seconds))
        out.extend((seconds, note) for note in grouper.tick(at(seconds)))
    return out


def kinds(notes: list[tuple[float, Notification]]) -> list[tuple[float, str]]:
    return [(seconds, note.kind) for seconds, note in notes]


# -- timing ----------------------------------------------------------------------------------------


def test_group_opens_only_after_group_wait() -> None:
    grouper = Grouper(POLICY, ROUTING)
    notes = run(grouper, [(0, deny(at(0))), (10, deny(at(10))), (29, None), (30, None)])
    assert kinds(notes) == [(30, "open")]
    assert notes[0][1].total == 2


@pytest.mark.parametrize(
    ("timeline", "expected"),
    [
        # new denies after the open: edit once group_interval has passed since the open
        ([(0, True), (30, False), (40, True), (60, False), (90, False)], [(30, "open"), (90, "update")]),
        # no new denies: no edit, however long we tick (until resolve)
        ([(0, True), (30, False), (90, False), (300, False)], [(30, "open")]),
        # many denies within one interval: one edit
        (
            [(0, True), (30, False), (35, True), (50, True), (70, True), (90, False), (95, False)],
            [(30, "open"), (90, "update")],
        ),
        # quiet for resolve_after (from the last deny) resolves
        ([(0, True), (30, False), (899, False), (900, False)], [(30, "open"), (900, "resolve")]),
        # activity postpones the resolve; the edit goes out at once (the interval has long passed)
        (
            [(0, True), (30, False), (600, True), (900, False), (1500, False)],
            [(30, "open"), (600, "update"), (1500, "resolve")],
        ),
    ],
)
def test_timing(timeline: list[tuple[float, bool]], expected: list[tuple[float, str]]) -> None:
    grouper = Grouper(POLICY, ROUTING)
    ticks = sorted({s for s, _ in timeline} | {s for s, _ in expected})
    events = {s for s, has_event in timeline if has_event}
    notes = run(grouper, [(s, deny(at(s)) if s in events else None) for s in ticks])
    assert kinds(notes) == expected


def test_repeat_posts_again_while_a_group_stays_active() -> None:
    grouper = Grouper(POLICY, ROUTING)
    timeline: list[tuple[float, PolicyEvent | None]] = [
        (s, deny(at(s))) for s in range(0, 4 * 3600 + 120, 60)
    ]
    notes = kinds(run(grouper, timeline))
    assert notes[0] == (60, "open")  # the first tick at or after group_wait
    repeats = [s for s, kind in notes if kind == "repeat"]
    assert repeats == [60 + 4 * 3600]
    assert all(kind in ("open", "update", "repeat") for _, kind in notes)


def test_a_deny_after_resolve_starts_a_new_group_with_fresh_counts() -> None:
    grouper = Grouper(POLICY, ROUTING)
    first = run(grouper, [(0, deny(at(0), count=5)), (30, None), (930, None)])
    assert kinds(first) == [(30, "open"), (930, "resolve")]
    assert grouper.groups == {}
    second = run(grouper, [(1000, deny(at(1000), count=2)), (1030, None)])
    assert kinds(second) == [(1030, "open")]
    assert second[0][1].total == 2
    assert second[0][1].group_id != first[0][1].group_id


def test_resolve_carries_denies_that_arrived_since_the_last_edit() -> None:
    grouper = Grouper(POLICY, ROUTING)
    notes = run(grouper, [(0, deny(at(0))), (30, None), (50, deny(at(50), count=7)), (950, None)])
    assert kinds(notes) == [(30, "open"), (950, "resolve")]
    assert notes[-1][1].total == 8
    assert notes[-1][1].last_seen == at(50)


# -- labels, routing, flows -------------------------------------------------------------------------


def test_groups_split_by_group_by_labels_and_route_to_channels() -> None:
    grouper = Grouper(POLICY, ROUTING)
    events = [
        deny(at(0), namespace="payments"),
        deny(at(1), namespace="payments-eu"),
        deny(at(2), namespace="checkout"),
        deny(at(3), namespace="payments", cluster="staging"),
    ]
    notes = run(grouper, [(i, e) for i, e in enumerate(events)] + [(60, None)])
    opened = {
        (note.channel, dict(note.labels)["cluster"], dict(note.labels)["namespace"]) for _, note in notes
    }
    assert opened == {
        ("#payments", "prod", "payments"),
        ("#payments", "prod", "payments-eu"),
        ("#default", "prod", "checkout"),
        ("#payments", "staging", "payments"),
    }


def test_namespace_is_the_policed_namespace() -> None:
    grouper = Grouper(POLICY, ROUTING)
    # egress: the policed pod is the source, in `payments`; the destination is an external IP
    notes = run(grouper, [(0, deny(at(0), direction="egress", namespace="payments")), (30, None)])
    assert dict(notes[0][1].labels)["namespace"] == "payments"
    assert notes[0][1].channel == "#payments"


def test_continue_routes_count_the_event_in_every_matching_channel() -> None:
    routing = RoutingTable(
        (
            Route((("cluster", "prod"),), "#prod-all", continue_=True),
            Route((("namespace", "pay*"),), "#payments"),
        ),
        "#default",
    )
    grouper = Grouper(POLICY, routing)
    notes = run(grouper, [(0, deny(at(0), count=3)), (30, None)])
    assert sorted((n.channel, n.total) for _, n in notes) == [("#payments", 3), ("#prod-all", 3)]


def test_allow_entries_are_not_grouped() -> None:
    grouper = Grouper(POLICY, ROUTING)
    assert grouper.fold(deny(at(0), disposition="allow"), at(0)) == 0
    assert run(grouper, [(60, None)]) == []


def test_flows_are_ranked_and_capped_with_more_flows_counted() -> None:
    grouper = Grouper(POLICY, ROUTING)
    timeline: list[tuple[float, PolicyEvent | None]] = [
        (0, deny(at(0), source="a", count=1)),
        (1, deny(at(1), source="b", count=10)),
        (2, deny(at(2), source="c", count=5)),
        (3, deny(at(3), source="d", count=7)),
        (30, None),
    ]
    note = run(grouper, timeline)[0][1]
    assert [f.key.source for f in note.top_flows] == ["checkout/b", "checkout/d", "checkout/c"]
    assert note.more_flows == 1
    assert note.flow_count == 4
    assert note.total == 23


def test_flows_past_the_tracking_cap_still_count_in_the_total() -> None:
    grouper = Grouper(POLICY, ROUTING)
    timeline: list[tuple[float, PolicyEvent | None]] = [
        (i, deny(at(i), source=f"s{i}", count=2)) for i in range(8)
    ]
    note = run(grouper, [*timeline, (30, None)])[0][1]
    assert note.flow_count == POLICY.max_flows_tracked
    assert note.other_count == 6
    assert note.total == 16


def test_new_flows_after_the_open_are_reported_once() -> None:
    grouper = Grouper(POLICY, ROUTING)
    notes = run(
        grouper,
        [
            (0, deny(at(0), source="a")),
            (30, None),
            (40, deny(at(40), source="b")),
            (45, deny(at(45), source="a")),
            (90, None),
            (100, deny(at(100), source="b")),
            (150, None),
        ],
    )
    assert kinds(notes) == [(30, "open"), (90, "update"), (150, "update")]
    assert notes[0][1].new_flows == ()
    assert [f.key.source for f in notes[1][1].new_flows] == ["checkout/b"]
    assert notes[2][1].new_flows == ()


def test_nodes_first_and_last_seen_use_entry_timestamps() -> None:
    grouper = Grouper(POLICY, ROUTING)
    late = deny(at(-20), node="node-b")  # arrives after a newer entry: first_seen still moves back
    notes = run(grouper, [(0, deny(at(-5), node="node-a")), (5, late), (30, None)])
    note = notes[0][1]
    assert note.nodes == ("node-a", "node-b")
    assert (note.first_seen, note.last_seen) == (at(-20), at(-5))


def test_no_count_is_lost_across_a_storm() -> None:
    grouper = Grouper(POLICY, ROUTING)
    timeline: list[tuple[float, PolicyEvent | None]] = []
    for second in range(0, 1200, 5):
        timeline.append((second, deny(at(second), source=f"s{second % 4}", count=1 + second % 13)))
    timeline.append((3000, None))
    notes = run(grouper, timeline)
    expected = sum(e.count for _, e in timeline if e is not None)
    assert notes[-1][1].kind == "resolve"
    assert notes[-1][1].total == expected
    totals = [n.total for _, n in notes]
    assert totals == sorted(totals)


# -- persistence -----------------------------------------------------------------------------------


def test_state_survives_a_restart_through_records() -> None:
    grouper = Grouper(POLICY, ROUTING)
    run(grouper, [(0, deny(at(0), source="a")), (30, None), (40, deny(at(40), source="b"))])
    upserts, dropped = grouper.changes()
    assert dropped == set()
    restarted = Grouper(POLICY, ROUTING)
    restarted.restore(decode_group(encode_group(change.group)) for change in upserts)
    for key, group in grouper.groups.items():
        assert restarted.groups[key] == group
    original = run(grouper, [(90, None)])
    resumed = run(restarted, [(90, None)])
    assert [n for _, n in resumed] == [n for _, n in original]
    assert [f.key.source for f in resumed[0][1].new_flows] == ["checkout/b"]


def test_changes_report_dropped_groups_once() -> None:
    grouper = Grouper(POLICY, ROUTING)
    run(grouper, [(0, deny(at(0))), (30, None)])
    grouper.changes()
    run(grouper, [(2000, None)])
    upserts, dropped = grouper.changes()
    assert upserts == []
    assert len(dropped) == 1
    assert grouper.changes() == ([], set())


def test_group_and_notification_records_round_trip() -> None:
    grouper = Grouper(POLICY, ROUTING)
    notes = run(grouper, [(0, deny(at(0))), (1, deny(at(1), port=None)), (30, None)])
    note = notes[0][1]
    assert decode_message(encode_message(AlertPost(note))) == AlertPost(note)
    group = next(iter(grouper.groups.values()))
    again = decode_group(encode_group(group))
    assert again == group
    assert replace(again).group_id == group.group_id


def test_a_muted_group_takes_nothing_while_other_routes_still_alert() -> None:
    routing = RoutingTable(
        (
            Route((("cluster", "prod"),), "#prod-all", continue_=True),
            Route((("namespace", "pay*"),), "#payments"),
        ),
        "#default",
    )
    grouper = Grouper(POLICY, routing)
    run(grouper, [(0, deny(at(0))), (30, None)])
    payments_key = next(key for key, group in grouper.groups.items() if group.channel == "#payments")
    assert grouper.fold(deny(at(40), count=5), at(40), frozenset({payments_key})) == 1
    totals = {group.channel: group.total for group in grouper.groups.values()}
    assert totals == {"#prod-all": 6, "#payments": 1}


def test_a_group_key_reads_back_what_it_wrote_and_keeps_the_text_of_posted_buttons() -> None:
    key = GroupKey("#payments-oncall", 0, (("cluster", "prod-eu"), ("namespace", "payments")))
    # Mute buttons already on screen carry this exact text (see tests/golden/alert_open.json).
    assert key.encode() == '["#payments-oncall",0,[["cluster","prod-eu"],["namespace","payments"]]]'
    assert GroupKey.decode(key.encode()) == key
    assert GroupKey.decode('["C0WEB", null, [["cluster", "prod-eu"]]]').route is None


@pytest.mark.parametrize("text", ["", "{}", "[1,2]", '["c",0,5]', "[1,0,[]]", '["c","x",[]]'])
def test_a_group_key_refuses_text_it_did_not_write(text: str) -> None:
    with pytest.raises(ValueError, match="not an alert group key"):
        GroupKey.decode(text)


# -- the global flow cap and incremental changes ---------------------------------------------------


def flows_of(grouper: Grouper) -> dict[str, set[str]]:
    return {
        dict(group.labels)["namespace"]: {flow.source for flow in group.flows}
        for group in grouper.groups.values()
    }


def test_the_global_cap_drops_the_least_recently_seen_flows_and_keeps_totals_exact() -> None:
    grouper = Grouper(replace(POLICY, max_flows_total=3), ROUTING)
    timeline = [("payments", "a", 2), ("orders", "b", 3), ("payments", "c", 1), ("payments", "a", 4)]
    for n, (namespace, source, count) in enumerate(timeline):
        grouper.fold(deny(at(n), namespace=namespace, source=source, count=count), at(n))
    assert flows_of(grouper) == {"payments": {"checkout/a", "checkout/c"}, "orders": {"checkout/b"}}

    # A fourth flow: "b" (orders) is the least recently folded, not "a" (payments), which came back.
    grouper.fold(deny(at(10), namespace="payments", source="d", count=5), at(10))
    assert flows_of(grouper) == {"payments": {"checkout/a", "checkout/c", "checkout/d"}, "orders": set()}
    orders, payments = sorted(grouper.groups.values(), key=lambda g: dict(g.labels)["namespace"])
    assert (orders.total, orders.other_count) == (3, 3)
    assert (payments.total, payments.other_count) == (12, 0)

    # "b" again is a new flow with a fresh count; the oldest now is "c".
    grouper.fold(deny(at(11), namespace="orders", source="b", count=1), at(11))
    assert flows_of(grouper) == {"payments": {"checkout/a", "checkout/d"}, "orders": {"checkout/b"}}
    assert (orders.total, orders.other_count) == (4, 3)
    assert (payments.total, payments.other_count) == (12, 1)
    for group in grouper.groups.values():
        assert group.total == group.other_count + sum(stats.count for stats in group.flows.values())


def test_the_global_cap_holds_the_last_flows_folded_and_every_count() -> None:
    grouper = Grouper(replace(POLICY, max_flows_total=50, max_flows_tracked=500), ROUTING)
    for n in range(400):
        grouper.fold(deny(at(n), namespace=f"ns-{n % 7}", source=f"s{n}", count=n % 3 + 1), at(n))
    tracked = {flow.source for group in grouper.groups.values() for flow in group.flows}
    assert tracked == {f"checkout/s{n}" for n in range(350, 400)}
    assert sum(group.total for group in grouper.groups.values()) == sum(n % 3 + 1 for n in range(400))
    notes = grouper.tick(at(400))
    assert sum(note.flow_count for note in notes) == 50
    assert sum(note.total for note in notes) == sum(n % 3 + 1 for n in range(400))


def test_a_restore_over_the_cap_keeps_the_most_recently_seen_flows() -> None:
    grouper = Grouper(POLICY, ROUTING)
    for n in range(4):
        grouper.fold(deny(at(n), namespace=f"ns-{n % 2}", source=f"s{n}"), at(n))
    smaller = Grouper(replace(POLICY, max_flows_total=2), ROUTING)
    smaller.restore(decode_group(encode_group(group)) for group in grouper.groups.values())
    assert {flow.source for group in smaller.groups.values() for flow in group.flows} == {
        "checkout/s2",
        "checkout/s3",
    }
    changes, _ = smaller.changes()
    assert sorted(len(change.evicted) for change in changes) == [1, 1]
    assert sum(group.other_count for group in smaller.groups.values()) == 2


def test_changes_name_only_the_flows_that_changed_since_the_last_save() -> None:
    grouper = Grouper(replace(POLICY, max_flows_total=3), ROUTING)
    for n, source in enumerate(["a", "b", "c"]):
        grouper.fold(deny(at(n), source=source), at(n))
    (fresh,), _ = grouper.changes()
    assert fresh.flows is None  # a new group is saved whole

    grouper.fold(deny(at(5), source="b", count=4), at(5))
    grouper.fold(deny(at(6), source="d"), at(6))  # over the cap: "a" goes
    (change,), _ = grouper.changes()
    assert change.flows is not None
    assert sorted((flow.source, stats.count) for flow, stats in change.flows) == [
        ("checkout/b", 5),
        ("checkout/d", 1),
    ]
    assert [flow.source for flow in change.evicted] == ["checkout/a"]
    assert change.group.other_count == 1

    grouper.tick(at(30))  # the open announces every flow: each changes once
    (opened,), _ = grouper.changes()
    assert opened.flows is not None
    assert len(opened.flows) == 3
    assert grouper.changes() == ([], set())


def test_clear_forgets_groups_and_unsaved_changes() -> None:
    grouper = Grouper(POLICY, ROUTING)
    grouper.fold(deny(at(0)), at(0))  # changed, never saved
    grouper.clear()
    assert grouper.groups == {}
    assert grouper.changes() == ([], set())
    grouper.fold(deny(at(1), count=2), at(1))
    (change,), _ = grouper.changes()
    assert (change.flows, change.group.total) == (None, 2)


def test_endpoints_built_where_freed_ones_were_go_by_their_own_fields() -> None:
    """The fold knows where events go by their endpoints' ids, which CPython hands out again once
    an endpoint is gone: a new endpoint at an old address must not inherit the old one's place."""
    grouper = Grouper(POLICY, ROUTING)
    namespaces = [f"payments-{n % 3}" if n % 2 else f"team-{n % 7}" for n in range(300)]
    for namespace in namespaces:
        grouper.fold(deny(at(0), namespace=namespace), at(0))  # nothing keeps its endpoints
    got = {(group.channel, dict(group.labels)["namespace"]): group.total for group in grouper.groups.values()}
    expected: dict[tuple[str, str], int] = {}
    for namespace in namespaces:
        key = ("#payments" if namespace.startswith("payments") else "#default", namespace)
        expected[key] = expected.get(key, 0) + 1
    assert got == expected


def test_a_policy_tracks_at_least_one_flow() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        replace(POLICY, max_flows_total=0)
    with pytest.raises(ValueError, match="at least 1"):
        replace(POLICY, max_flows_tracked=0)
