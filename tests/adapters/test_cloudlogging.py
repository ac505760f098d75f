"""`CloudLoggingSource`: the real google-cloud-logging client against the fake Cloud Logging
(tests/fakes/logging.py), which filters, orders and pages as Google does:

- entries parsed and rolled up exactly as the history is (attempts, entries, nodes, first and last
  seen), and the exact `FlowFilter` applied to what the superset query returned;
- the request: project, filter text (`history_filter`, the end rounded up to a minute), newest
  first, `page_size`; pages followed; the cap (`truncated` past it, not at it);
- rate limits: the same filter text answered from memory for `cache_for` seconds (by the injected
  clock), a different exact filter over the same text too; one query per person at a time;
- failures as sentences: 429, 403 (naming roles/logging.viewer and the project), other API
  errors, an unreachable endpoint, no credentials (and no client, so no credentials looked up,
  before the first query); an unusable entry counted as rejected, one the client itself cannot
  read ending the answer early.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.cloudlogging import (
    ALREADY_RUNNING,
    RATE_LIMITED,
    CloudLoggingSource,
    LoggingAnswer,
    LoggingError,
)
from bot.core.events import NetworkNames
from bot.core.history import FlowFilter, FlowNode, Window
from bot.core.logquery import history_filter
from tests.fakes.logging import FakeCloudLogging
from tests.logentries import log_entry

PROJECT = "acme"
NOW = datetime(2026, 3, 2, 10, 25, 10, tzinfo=UTC)
WINDOW = Window.since(NOW, timedelta(hours=2))  # 08:00 to 10:25:10
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
NETWORKS = NetworkNames.from_mapping({"169.254.169.254/32": "metadata-server"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeCloudLogging]:
    with FakeCloudLogging(project=PROJECT) as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


def source(fake: FakeCloudLogging, clock: Clock | None = None, **options: Any) -> CloudLoggingSource:
    return CloudLoggingSource(PROJECT, NETWORKS, fake.api_url, clock=clock or Clock(), **options)


def entry(at: datetime = NOW - 5 * MIN, **fields: Any) -> dict[str, Any]:
    """A deny as GKE writes it: the shared builder's, with `pod_namespace` beside `namespace` as the
    current payload format has both (and the filter names `pod_namespace`)."""
    built = log_entry(at=at, project=PROJECT, **fields)
    for side in ("src", "dest"):
        built["jsonPayload"][side]["pod_namespace"] = built["jsonPayload"][side]["namespace"]
    return built


def node_source(built: dict[str, Any], node: str = "gke-prod-a") -> dict[str, Any]:
    built["jsonPayload"]["src"] = {"node_name": node, "workload_kind": "Node"}
    return built


def flow(
    source: str = "checkout/web",
    node: str = "n1",
    *,
    attempts: int,
    entries: int,
    first: datetime,
    last: datetime,
    port: int = 443,
) -> FlowNode:
    return FlowNode(
        "prod",
        "ingress",
        source,
        "payments/api",
        port,
        "tcp",
        node,
        "payments",
        attempts,
        entries,
        first,
        last,
        0,
    )


EVERYTHING = FlowFilter()


def ask(logging: CloudLoggingSource, flow_filter: FlowFilter = EVERYTHING, user: str = "U1") -> LoggingAnswer:
    return logging.flow_nodes(user, flow_filter, WINDOW)


def test_entries_are_rolled_up_as_the_history_is(fake: FakeCloudLogging) -> None:
    t1, t2, t3 = NOW - 90 * MIN, NOW - 50 * MIN, NOW - 10 * MIN  # 08:55, 09:35, 10:15
    fake.add(
        entry(t1, count=3),
        entry(t2, count=2, src_port=40000),
        entry(t3, count=1, node="n2"),
        entry(t3 + MIN, port=8443, count=7),
        entry(NOW - 3 * HOUR, count=100),  # before the window: not asked for
        entry(t2, disposition="allow"),  # not a deny: not asked for
    )

    answer = ask(source(fake))

    assert sorted(answer.rows) == [
        flow(attempts=5, entries=2, first=t1, last=t2),
        flow(node="n2", attempts=1, entries=1, first=t3, last=t3),
        flow(port=8443, attempts=7, entries=1, first=t3 + MIN, last=t3 + MIN),
    ]
    assert (answer.entries, answer.truncated, answer.rejected) == (4, False, 0)


def test_the_request_asks_for_the_superset_newest_first(fake: FakeCloudLogging) -> None:
    flow_filter = FlowFilter(cluster="prod", namespace="payments", src="checkout/w*", port=443)

    answer = ask(source(fake, page_size=200), flow_filter)

    # The end is rounded up to a whole minute: one question asked within a minute is one filter.
    expected = history_filter(PROJECT, flow_filter, WINDOW.start, datetime(2026, 3, 2, 10, 26, tzinfo=UTC))
    assert answer.query == expected
    assert expected.splitlines()[-2:] == [
        'timestamp>="2026-03-02T08:00:00Z"',
        'timestamp<"2026-03-02T10:26:00Z"',
    ]
    assert [(r.resource_names, r.filter, r.order_by, r.page_size) for r in fake.requests] == [
        (["projects/acme"], expected, "timestamp desc", 200)
    ]


def test_the_exact_filter_narrows_what_the_query_returns(fake: FakeCloudLogging) -> None:
    fake.add(
        entry(source="web"),
        entry(source="worker"),
        entry(source="web", source_namespace="shop"),  # left out by the query already
        node_source(entry()),  # a node: the query cannot tell it from `checkout/...`
    )

    answer = ask(source(fake), FlowFilter(src="checkout/w?b"))

    assert [row.source for row in answer.rows] == ["checkout/web"]
    assert answer.entries == 3  # read: web, worker, the node


def test_pages_are_followed(fake: FakeCloudLogging) -> None:
    fake.add(*(entry(NOW - m * MIN, count=m) for m in range(1, 8)))

    answer = ask(source(fake, page_size=3))

    assert [r.returned for r in fake.requests] == [3, 3, 1]
    assert [r.page_token is None for r in fake.requests] == [True, False, False]
    assert (answer.entries, answer.truncated, sum(r.attempts for r in answer.rows)) == (7, False, 28)


def test_past_the_cap_the_newest_are_counted_and_the_answer_says_so(fake: FakeCloudLogging) -> None:
    fake.add(*(entry(NOW - m * MIN, count=m) for m in range(1, 8)))  # counts 1..7, newest first

    answer = ask(source(fake, cap=5, page_size=3))

    assert (answer.entries, answer.truncated) == (5, True)
    assert [(row.attempts, row.first_seen, row.last_seen) for row in answer.rows] == [
        (1 + 2 + 3 + 4 + 5, NOW - 5 * MIN, NOW - MIN)
    ]
    assert [r.returned for r in fake.requests] == [3, 3]  # one past the cap is read, no more


def test_at_the_cap_nothing_is_left_out(fake: FakeCloudLogging) -> None:
    fake.add(*(entry(NOW - m * MIN) for m in range(1, 6)))

    answer = ask(source(fake, cap=5, page_size=3))

    assert (answer.entries, answer.truncated) == (5, False)


def test_the_same_filter_text_is_answered_from_memory(fake: FakeCloudLogging, clock: Clock) -> None:
    fake.add(entry(source="web", count=2), entry(source="worker", count=3))
    logging = source(fake, clock, cache_for=60.0)

    first = ask(logging, FlowFilter(src="checkout/web"))
    fake.add(entry(source="web", count=100))  # logged after the first answer
    clock.now += 59.0
    again = ask(logging, FlowFilter(src="checkout/web"), user="U2")
    # Another exact filter with the same superset text: the same entries, narrowed otherwise.
    other = ask(logging, FlowFilter(src="checkout/wor*"))

    assert len(fake.requests) == 1
    assert again == first
    assert [(row.source, row.attempts) for row in first.rows] == [("checkout/web", 2)]
    assert [(row.source, row.attempts) for row in other.rows] == [("checkout/worker", 3)]

    clock.now += 1.0
    fresh = ask(logging, FlowFilter(src="checkout/web"))

    assert len(fake.requests) == 2
    assert [(row.source, row.attempts) for row in fresh.rows] == [("checkout/web", 102)]


def test_another_filter_text_is_asked_for(fake: FakeCloudLogging) -> None:
    logging = source(fake)

    ask(logging, FlowFilter(cluster="prod"))
    ask(logging, FlowFilter(cluster="dev"))
    logging.flow_nodes("U1", FlowFilter(cluster="prod"), Window.since(NOW + 2 * MIN, timedelta(hours=2)))

    assert len(fake.requests) == 3


def test_one_query_per_person_at_a_time(fake: FakeCloudLogging) -> None:
    fake.add(entry())
    logging = source(fake)
    fake.hold()
    with ThreadPoolExecutor(2) as pool:
        running: Future[LoggingAnswer] = pool.submit(ask, logging, FlowFilter(cluster="prod"))
        assert fake.wait_for_requests(1)

        with pytest.raises(LoggingError) as refused:
            ask(logging, FlowFilter(cluster="dev"))
        # Someone else's query is not held back by it.
        other: Future[LoggingAnswer] = pool.submit(ask, logging, FlowFilter(cluster="dev"), "U2")
        assert fake.wait_for_requests(2)
        fake.release()

        assert len(running.result(timeout=10).rows) == 1
        assert other.result(timeout=10).rows == []
    assert (
        str(refused.value)
        == ALREADY_RUNNING
        == ("You already have a Cloud Logging query running; wait for its answer.")
    )
    assert len(fake.requests) == 2
    ask(logging, FlowFilter(cluster="staging"))  # once answered, the person may ask again
    assert len(fake.requests) == 3


def test_rate_limited(fake: FakeCloudLogging) -> None:
    logging = source(fake)
    fake.fail_next(429)

    with pytest.raises(LoggingError) as refused:
        ask(logging)

    assert (
        str(refused.value)
        == RATE_LIMITED
        == ("Cloud Logging is busy (about 60 queries a minute per project); try again in a minute.")
    )
    assert refused.value.__traceback__ is not None
    # A refusal is not remembered, and does not keep the person's place.
    fake.add(entry())
    assert len(ask(logging).rows) == 1
    assert len(fake.requests) == 2


def test_forbidden_names_the_role_and_the_project(fake: FakeCloudLogging) -> None:
    fake.fail_next(403)

    with pytest.raises(LoggingError) as refused:
        ask(source(fake))

    assert str(refused.value) == (
        "The bot may not read Cloud Logging in project acme: give its Google service account "
        "roles/logging.viewer on that project."
    )


def test_another_api_error_is_a_sentence(fake: FakeCloudLogging) -> None:
    fake.fail_next(503)

    with pytest.raises(LoggingError) as refused:
        ask(source(fake))

    assert str(refused.value) == (
        "Cloud Logging could not answer (503: The service is currently unavailable); try again in a "
        "minute, or open Logs Explorer."
    )


def test_an_unreachable_endpoint_is_a_sentence() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    logging = CloudLoggingSource(PROJECT, NETWORKS, url)

    with pytest.raises(LoggingError) as refused:
        ask(logging)

    assert str(refused.value) == f"Cloud Logging could not be reached at {url}; try again in a minute."


def test_no_client_before_the_first_query(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Default credentials pointing at nothing: looking them up fails, so only a query may do it.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    logging = CloudLoggingSource(PROJECT, NETWORKS)

    with pytest.raises(LoggingError) as refused:
        ask(logging)

    assert str(refused.value) == (
        "The bot has no Google credentials Cloud Logging accepts for project acme: run it with "
        "Workload Identity or set GOOGLE_APPLICATION_CREDENTIALS to a key file."
    )


def test_unusable_entries_are_counted_not_raised(fake: FakeCloudLogging) -> None:
    sideways = entry(NOW - 2 * MIN)
    sideways["jsonPayload"]["connection"]["direction"] = "sideways"
    no_connection = entry(NOW - 3 * MIN)
    del no_connection["jsonPayload"]["connection"]
    fake.add(entry(NOW - MIN), sideways, no_connection, entry(NOW - 4 * MIN))
    fake.apply_filter = False  # Cloud Logging would not send the one without a connection

    answer = ask(source(fake))

    assert (answer.entries, answer.rejected, answer.truncated) == (4, 2, False)
    assert [(row.attempts, row.entries) for row in answer.rows] == [(2, 2)]


def test_an_entry_the_client_cannot_read_ends_the_answer(fake: FakeCloudLogging) -> None:
    nameless = entry(NOW - 2 * MIN)
    del nameless["logName"]
    fake.add(entry(NOW - MIN), nameless, entry(NOW - 3 * MIN))
    fake.apply_filter = False

    answer = ask(source(fake))

    assert (answer.entries, answer.rejected, answer.truncated) == (1, 1, True)
    assert [row.last_seen for row in answer.rows] == [NOW - MIN]


def test_several_people_query_at_once(fake: FakeCloudLogging) -> None:
    fake.add(entry())
    logging = source(fake)
    barrier = threading.Barrier(4)

    def one(user: str) -> int:
        barrier.wait(timeout=5)
        return len(logging.flow_nodes(user, FlowFilter(cluster=user), WINDOW).rows)

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(one, ["prod", "dev", "a", "b"])) == [0, 0, 0, 1]
    assert len(fake.requests) == 4
