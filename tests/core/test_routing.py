"""Routing: glob matchers over event fields, first match wins, `continue`, the default channel."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.events import Endpoint, PolicyEvent
from bot.core.routing import (
    EVENT_FIELDS,
    Route,
    RouteMatch,
    Router,
    RoutingTable,
    event_fields,
    unknown_fields,
)

TABLE = RoutingTable(
    (
        Route((("namespace", "payments*"),), "#payments"),
        Route((("cluster", "prod-*"), ("dest_port", "53")), "#dns", continue_=True),
        Route((("cluster", "prod-*"),), "#prod"),
        Route((("cluster", "staging"),), "#staging"),
    ),
    "#default",
)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"namespace": "payments", "cluster": "prod-eu"}, [RouteMatch("#payments", 0)]),
        ({"namespace": "payments-eu", "cluster": "staging"}, [RouteMatch("#payments", 0)]),
        (
            {"namespace": "web", "cluster": "prod-eu", "dest_port": "53"},
            [RouteMatch("#dns", 1), RouteMatch("#prod", 2)],
        ),
        ({"namespace": "web", "cluster": "prod-us", "dest_port": "443"}, [RouteMatch("#prod", 2)]),
        ({"namespace": "web", "cluster": "staging"}, [RouteMatch("#staging", 3)]),
        ({"namespace": "web", "cluster": "dev"}, [RouteMatch("#default", None)]),
        ({}, [RouteMatch("#default", None)]),
        # globs are case-sensitive, as Kubernetes names are
        ({"namespace": "Payments", "cluster": "dev"}, [RouteMatch("#default", None)]),
    ],
)
def test_routes(fields: dict[str, str], expected: list[RouteMatch]) -> None:
    assert list(TABLE.route(fields)) == expected


def test_a_channel_matched_twice_is_listed_once() -> None:
    table = RoutingTable(
        (Route((("cluster", "*"),), "#all", continue_=True), Route((("namespace", "*"),), "#all")), "#d"
    )
    assert table.route({"cluster": "x", "namespace": "y"}) == (RouteMatch("#all", 0),)


def test_event_fields_cover_every_routable_name() -> None:
    event = PolicyEvent(
        insert_id="x",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        direction="egress",
        disposition="deny",
        protocol="udp",
        src=Endpoint("pod", ip="10.0.0.1", namespace="payments", workload="api", pod="api-abc"),
        dest=Endpoint("ip", ip="169.254.169.254", network="metadata-server"),
        dest_port=53,
        cluster="prod-eu",
        location="europe-west1",
        node="gke-node-1",
    )
    fields = event_fields(event)
    assert set(fields) == set(EVENT_FIELDS)
    assert fields["namespace"] == "payments"  # egress: the policed pod is the source
    assert fields["source"] == "payments/api"
    assert fields["destination"] == "metadata-server (169.254.169.254)"
    assert fields["dest_port"] == "53"
    assert fields["dest_namespace"] == ""
    assert unknown_fields(["namespace", "colour"]) == ["colour"]


# The Router (what the grouper routes with) must answer exactly as RoutingTable.route, whatever the
# table and the values, including a route with two globs on one field and a channel taken twice.
GLOBS = st.sampled_from(["payments*", "prod-*", "53", "*", "web", "?eb", "[ps]*", "staging"])
VALUES = st.sampled_from(["payments", "payments-eu", "prod-eu", "53", "443", "web", "staging", ""])
FIELDS = st.sampled_from(["namespace", "cluster", "dest_port"])
ROUTES = st.builds(
    Route,
    st.lists(st.tuples(FIELDS, GLOBS), min_size=1, max_size=3).map(tuple),
    st.sampled_from(["#a", "#b", "#c"]),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ROUTES, max_size=5), st.lists(st.dictionaries(FIELDS, VALUES), min_size=1, max_size=8))
def test_the_router_answers_as_the_table(routes: list[Route], events: list[dict[str, str]]) -> None:
    table = RoutingTable(tuple(routes), "#default")
    router = Router(table, memo_size=2)  # a tiny memo is cleared between events: answers must not change
    for fields in events:
        values = [fields.get(name, "") for name in router.fields]
        assert router.route(values) == table.route(fields)
