"""Routing: glob matchers over event fields, first match wins, `continue`, the default channel."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.events import Endpoint, PolicyEvent
from bot.core.routing import EVENT_FIELDS, Route, RouteMatch, RoutingTable, event_fields, unknown_fields

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
