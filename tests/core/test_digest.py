"""The digest's maths (`bot.core.digest`), table-driven with explicit times: periods in whole hours,
quiet days against days with no data, new flows, trends against the previous period and the daily
average, muted share, the chart's series, channel scoping by routes, and the renderings (terminal
and Slack: escaped, within Block Kit limits, time zones and DST in the title)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.core.digest import (
    AVERAGE_DAYS,
    DigestInputs,
    FlowHour,
    Health,
    Period,
    build_digest,
    logging_coverage,
    row_fields,
    scope,
    silent_hours,
    typical_lag,
)
from bot.core.events import EntryParser, PolicyEvent
from bot.core.history import NodeCap, capped_nodes, hour_of
from bot.core.netlogging import LoggingSpec
from bot.core.routing import Route, RoutingTable
from bot.render.digest import digest_blocks, digest_summary, digest_text
from tests.logentries import encoded

END = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
PERIOD = Period(END - DAY, END)
EVERYWHERE = RoutingTable((), "C0DEFAULT")
ROUTES = RoutingTable(
    (
        Route((("namespace", "payments*"),), "C0PAY"),
        Route((("dest_port", "5432"),), "C0DATA", continue_=True),
        Route((("cluster", "staging"),), "C0STAGING"),
    ),
    "C0DEFAULT",
)


def row(
    at: datetime,
    attempts: int,
    *,
    src: str = "checkout/web",
    dst: str = "payments/api",
    port: int = 8080,
    namespace: str = "payments",
    cluster: str = "prod",
    muted: int = 0,
) -> FlowHour:
    return FlowHour(
        hour_of(at), cluster, "ingress", src, dst, port, "tcp", namespace, attempts, attempts, muted, at, at
    )


def inputs(
    hours: list[FlowHour],
    *,
    before: list[FlowHour] | None = None,
    seen: set[tuple[str, str, str, str, int, str]] | None = None,
    history_start: datetime | None = END - 30 * DAY,
    health: Health | None = None,
) -> DigestInputs:
    return DigestInputs(
        PERIOD,
        hours,
        before or [],
        frozenset(seen or set()),
        history_start,
        health or Health(),
        {"C0PAY": (2, 1)},
    )


def test_a_period_is_whole_utc_hours_ending_at_the_top_of_the_hour_asked_in() -> None:
    period = Period.ending(datetime(2026, 3, 2, 9, 20, tzinfo=UTC), DAY)
    assert (period.start, period.end) == (END - DAY, END)
    assert len(period.hours) == 24
    assert period.previous() == Period(END - 2 * DAY, END - DAY)
    with pytest.raises(ValueError, match="at least one hour"):
        Period.ending(END, timedelta(minutes=30))


def test_a_period_across_a_dst_change_is_as_long_as_the_local_day() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 29 March 2026: clocks go forward at 02:00, so 09:00 to 09:00 local is 23 hours.
    start = datetime(2026, 3, 28, 9, 0, tzinfo=berlin).astimezone(UTC)
    end = datetime(2026, 3, 29, 9, 0, tzinfo=berlin).astimezone(UTC)
    period = Period.ending(end, end - start)
    assert len(period.hours) == 23
    title = digest_text(build_digest(_empty(period), EVERYWHERE, None), zone=berlin).splitlines()[0]
    assert "Sat 28 Mar 09:00 – Sun 29 Mar 09:00 CEST" in title


def _empty(period: Period) -> DigestInputs:
    return DigestInputs(period, [], [], frozenset(), None)


@pytest.mark.parametrize(
    ("case", "hours", "health", "headline"),
    [
        ("quiet day, entries arrived", [], Health(), "Quiet: no denied attempts in these 24 hours."),
        (
            "no data at all",
            [],
            Health(silent_hours=tuple(END - DAY + n * HOUR for n in range(24))),
            "No log entries arrived at all in this period",
        ),
        (
            "some hours without data",
            [],
            Health(silent_hours=(END - 3 * HOUR, END - 2 * HOUR)),
            "No log entries at all in 2 hours of 24",
        ),
        ("denies", [row(END - HOUR, 5)], Health(), "At least 5 denied attempts in 1 flow (1 new flow)."),
    ],
)
def test_the_headline_says_quiet_no_data_or_how_much(
    case: str, hours: list[FlowHour], health: Health, headline: str
) -> None:
    digest = build_digest(inputs(hours, health=health), EVERYWHERE, None)
    assert digest.quiet == (not hours)
    assert headline in digest_text(digest), case


def test_new_flows_are_those_the_history_never_held_before_the_period() -> None:
    old = row(END - 5 * HOUR, 40, src="checkout/web")
    new = row(END - 2 * HOUR, 7, src="batch/cron")
    digest = build_digest(inputs([old, new], seen={old.identity}), EVERYWHERE, None)
    assert [flow.source for flow in digest.new_flows] == ["batch/cron"]
    assert digest.new_flow_count == 1
    assert digest.new_flows[0].first_seen == END - 2 * HOUR
    assert [flow.source for flow in digest.top_flows] == ["checkout/web", "batch/cron"]


@pytest.mark.parametrize(
    ("previous", "week", "history_start", "period_change", "average_change", "days"),
    [
        (100, 7 * 50, END - 30 * DAY, 1.0, 3.0, 7),  # 200 now: twice the previous day, 4× the average
        (0, 0, END - 30 * DAY, None, None, 7),  # nothing before: no ratio
        (None, 50, END - DAY - DAY, None, 3.0, 1),  # history began a day before the period: 1 day
        (None, None, END - HOUR, None, None, 0),  # history began inside the period
    ],
)
def test_trends_against_the_previous_period_and_the_daily_average(
    previous: int | None,
    week: int | None,
    history_start: datetime,
    period_change: float | None,
    average_change: float | None,
    days: int,
) -> None:
    hours = [row(END - HOUR, 200)]
    if previous:
        hours.append(row(END - DAY - HOUR, previous))
    before = [row(END - DAY - AVERAGE_DAYS * DAY, week)] if week else []
    digest = build_digest(inputs(hours, before=before, history_start=history_start), EVERYWHERE, None)
    assert digest.period_change == period_change
    assert digest.average_change == average_change
    assert digest.average_days == days
    if history_start > PERIOD.start:
        assert digest.previous_attempts is None
        assert digest.daily_average is None
        assert "Nothing to compare with yet" in digest_text(digest)


def test_muted_attempts_are_counted_and_their_share_shown() -> None:
    digest = build_digest(inputs([row(END - HOUR, 100, muted=25)]), EVERYWHERE, None)
    assert (digest.attempts, digest.muted_attempts) == (100, 25)
    assert "Muted: 25 attempts (25% of all)." in digest_text(digest)


def test_the_series_stacks_top_namespaces_and_folds_the_rest_with_the_previous_period_as_a_line() -> None:
    hours = [
        row(END - HOUR, 10, namespace="a"),
        row(END - HOUR, 5, namespace="b", src="x/y"),
        row(END - 2 * HOUR, 1, namespace="c", src="z/z"),
        row(END - DAY - HOUR, 4, namespace="a"),  # the previous period's last hour
    ]
    digest = build_digest(inputs(hours), EVERYWHERE, None, stacked=2)
    series = digest.series
    assert len(series.hours) == 24
    assert series.hours[-1] == END - HOUR
    assert dict(series.stacks) == {
        "a": (0,) * 23 + (10,),
        "b": (0,) * 23 + (5,),
        "others": (0,) * 22 + (1, 0),
    }
    assert series.previous == (0,) * 23 + (4,)


@pytest.mark.parametrize(
    ("channel", "sources", "scoped"),
    [
        ("C0PAY", ["checkout/web"], True),  # namespace payments*
        ("C0DATA", ["app/api", "staging-app/api"], True),  # port 5432, continue: also in its other routes
        ("C0STAGING", ["staging-app/api"], True),  # cluster staging (port 5432 continued to it)
        ("C0DEFAULT", ["web/x"], True),  # what no route takes (a continued match is a match)
        ("C0ELSEWHERE", ["app/api", "checkout/web", "staging-app/api", "web/x"], False),  # everything
        (None, ["app/api", "checkout/web", "staging-app/api", "web/x"], False),
    ],
)
def test_a_channel_gets_the_flows_its_routes_send_it(
    channel: str | None, sources: list[str], scoped: bool
) -> None:
    hours = [
        row(END - HOUR, 1, src="checkout/web", namespace="payments"),
        row(END - HOUR, 1, src="app/api", namespace="db", dst="db/postgres", port=5432),
        row(END - HOUR, 1, src="staging-app/api", namespace="db", port=5432, cluster="staging"),
        row(END - HOUR, 1, src="web/x", namespace="web", dst="web/y"),
    ]
    kept, was_scoped = scope(hours, ROUTES, channel)
    assert sorted(r.source for r in kept) == sources
    assert was_scoped == scoped


def test_routes_on_fields_the_history_does_not_keep_are_named_in_a_note() -> None:
    routing = RoutingTable((Route((("src_ip", "10.0.*"),), "C0IPS"),), "C0DEFAULT")
    digest = build_digest(inputs([row(END - HOUR, 1)]), routing, "C0IPS")
    assert digest.notes
    assert "src_ip" in digest.notes[0]
    assert build_digest(inputs([row(END - HOUR, 1)]), routing, None).notes == ()


def test_route_fields_of_a_history_row() -> None:
    fields = row_fields(row(END, 1, src="node/gke-pool-1", dst="payments/api", port=0))
    assert fields["src_namespace"] == ""
    assert fields["src_workload"] == ""
    assert (fields["dest_namespace"], fields["dest_workload"]) == ("payments", "api")
    assert fields["dest_port"] == ""
    assert fields["disposition"] == "deny"


def test_alert_counts_are_the_channels_or_all_of_them() -> None:
    data = DigestInputs(PERIOD, [], [], frozenset(), None, alerts={"C0PAY": (2, 1), "C0DEFAULT": (3, 3)})
    assert (
        build_digest(data, ROUTES, "C0PAY").alerts_opened,
        build_digest(data, ROUTES, "C0PAY").alerts_resolved,
    ) == (2, 1)
    everything = build_digest(data, ROUTES, None)
    assert (everything.alerts_opened, everything.alerts_resolved) == (5, 4)


def test_health_helpers() -> None:
    period = Period(END - 3 * HOUR, END)
    assert silent_hours(period, {hour_of(END - 2 * HOUR)}) == (END - 3 * HOUR, END - HOUR)
    assert typical_lag([]) is None
    assert typical_lag([timedelta(seconds=s) for s in (9, 1, 5)]) == timedelta(seconds=5)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (LoggingSpec(deny_log=False), "cannot see them"),
        (LoggingSpec(deny_log=True, deny_delegate=True), "sees only those"),
        (LoggingSpec(deny_log=True), "on for the whole cluster"),
    ],
)
def test_logging_coverage_says_what_the_digest_can_see(spec: LoggingSpec, says: str) -> None:
    assert says in logging_coverage(spec)


def test_slack_blocks_escape_log_text_and_stay_within_limits() -> None:
    hostile = "<!channel>*bold*"
    hours = [row(END - HOUR, n + 1, src=f"{hostile}{n}/{'w' * 200}", namespace=f"ns{n}") for n in range(300)]
    digest = build_digest(inputs(hours), EVERYWHERE, None, limit=200)
    blocks = digest_blocks(digest, project="acme-prod")
    assert len(blocks) <= 50
    for block in blocks:
        text = block.get("text", {}).get("text", "")
        assert len(text) <= 3000
        assert "<!channel>" not in text
    assert "&lt;!channel&gt;" in str(blocks)
    assert "Logs Explorer" in str(blocks)
    assert digest_summary(digest).startswith("Network policy digest: at least")


def _events(count: int, node: str, at: datetime, spread: timedelta = timedelta(0)) -> list[PolicyEvent]:
    parser = EntryParser()
    return [
        parser.parse(
            encoded(at=at + spread * n / max(count, 1), node=node, insert_id=f"{node}-{n}-{at:%H%M%S}")
        )
        for n in range(count)
    ]


@pytest.mark.parametrize(
    ("batch", "capped"),
    [
        (lambda: _events(499, "n1", END), []),  # too few in the batch to hold a capped second
        (lambda: _events(500, "n1", END), [("n1", 500)]),  # 500 lines in one second: at the cap
        (lambda: _events(700, "n1", END, timedelta(seconds=1.9)), []),  # 700 over two seconds
        (lambda: _events(300, "n1", END) + _events(300, "n2", END), []),  # per node, not per cluster
        (lambda: _events(520, "n2", END) + _events(510, "n2", END + HOUR), [("n2", 520), ("n2", 510)]),
    ],
)
def test_nodes_at_gkes_line_cap_are_found_per_second(batch: Any, capped: list[tuple[str, int]]) -> None:
    caps = capped_nodes(batch())
    assert [(cap.node, cap.peak) for cap in caps] == capped
    assert all(cap.cluster == "prod" for cap in caps)


def test_capped_nodes_are_named_in_the_digest() -> None:
    cap = NodeCap(hour_of(END - HOUR), "prod", "gke-pool-7", 500)
    digest = build_digest(inputs([row(END - HOUR, 1)], health=Health(capped=(cap,))), EVERYWHERE, None)
    assert "1 node hit GKE's 500 lines/s cap" in digest_text(digest)
    assert "gke-pool-7 (prod)" in digest_text(digest)
