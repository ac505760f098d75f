"""The fake Cloud Logging, driven by the real google-cloud-logging client over HTTP/JSON, answers
entries.list as Google does: filtered, ordered, paged with tokens only the same query may use,
errors in Google's JSON shape; and its reading of the filter language (the bot's subset)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core import exceptions as google_errors

from bot.adapters.cloudlogging import logging_client
from tests.fakes.logging import FakeCloudLogging, FilterError, compile_filter
from tests.logentries import log_entry

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeCloudLogging]:
    with FakeCloudLogging() as fake:
        yield fake


def client(fake: FakeCloudLogging) -> Any:
    """The real client, made as the bot makes it for a stand-in server."""
    return logging_client(fake.project, fake.api_url)


def entry(minute: int, **fields: Any) -> dict[str, Any]:
    return log_entry(at=T0 + timedelta(minutes=minute), insert_id=f"m{minute}", project="acme", **fields)


def ids(entries: Any) -> list[str]:
    return [e.insert_id for e in entries]


def post(fake: FakeCloudLogging, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{fake.api_url}/v2/entries:list", data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, dict(json.load(answer))
    except urllib.error.HTTPError as error:
        return error.code, dict(json.load(error))


def test_pages_newest_first_with_tokens(fake: FakeCloudLogging) -> None:
    fake.add(*(entry(m) for m in (3, 0, 4, 1, 2)))
    since = 'timestamp>="2026-03-02T10:00:00Z"'

    found = client(fake).list_entries(filter_=since, order_by="timestamp desc", page_size=2)

    assert ids(found) == ["m4", "m3", "m2", "m1", "m0"]
    assert [(r.page_size, r.returned, r.order_by) for r in fake.requests] == [
        (2, 2, "timestamp desc"),
        (2, 2, "timestamp desc"),
        (2, 1, "timestamp desc"),
    ]
    assert fake.requests[0].page_token is None
    assert fake.requests[1].page_token is not None
    assert fake.requests[0].resource_names == ["projects/acme"]
    assert fake.requests[0].filter == since


def test_the_filter_is_applied(fake: FakeCloudLogging) -> None:
    fake.add(entry(0, cluster="prod"), entry(1, cluster="dev"), entry(2, cluster="prod", port=53))
    query = "\n".join(
        [
            'resource.labels.cluster_name="PROD"',
            "jsonPayload.connection.dest_port=443",
            f'timestamp>="{T0:%FT%TZ}"',
        ]
    )

    assert ids(client(fake).list_entries(filter_=query)) == ["m0"]  # ascending unless told otherwise


def test_a_token_serves_only_its_own_query(fake: FakeCloudLogging) -> None:
    fake.add(*(entry(m) for m in range(3)))
    body = {"resourceNames": ["projects/acme"], "filter": 'timestamp>="2026-03-02T10:00:00Z"', "pageSize": 2}
    status, first = post(fake, body)
    assert status == 200
    assert "nextPageToken" in first

    assert post(fake, body | {"pageToken": first["nextPageToken"]})[0] == 200
    status, refused = post(fake, body | {"pageToken": first["nextPageToken"], "filter": "timestamp>=1"})
    assert (status, refused["error"]["status"]) == (400, "INVALID_ARGUMENT")


def test_an_empty_page_has_no_entries_key(fake: FakeCloudLogging) -> None:
    assert post(fake, {"resourceNames": ["projects/acme"]}) == (200, {})


@pytest.mark.parametrize(
    ("status", "error", "google_status", "reason"),
    [
        (429, google_errors.TooManyRequests, "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED"),
        (403, google_errors.Forbidden, "PERMISSION_DENIED", "IAM_PERMISSION_DENIED"),
        (503, google_errors.ServiceUnavailable, "UNAVAILABLE", None),
    ],
)
def test_injected_errors_are_googles(
    fake: FakeCloudLogging,
    status: int,
    error: type[Exception],
    google_status: str,
    reason: str | None,
) -> None:
    fake.fail_next(status)

    with pytest.raises(error):
        list(client(fake).list_entries(filter_='timestamp>="2026-03-02T10:00:00Z"'))
    assert [r.status for r in fake.requests] == [status]
    assert list(client(fake).list_entries(filter_='timestamp>="2026-03-02T10:00:00Z"')) == []  # once

    fake.fail_next(status)
    answer_status, body = post(fake, {"resourceNames": ["projects/acme"]})
    assert (answer_status, body["error"]["code"], body["error"]["status"]) == (status, status, google_status)
    assert [d["reason"] for d in body["error"].get("details", [])] == ([reason] if reason else [])


def test_another_project_is_refused(fake: FakeCloudLogging) -> None:
    status, body = post(fake, {"resourceNames": ["projects/other"]})
    assert (status, body["error"]["status"]) == (403, "PERMISSION_DENIED")


def test_an_unparseable_filter_is_refused(fake: FakeCloudLogging) -> None:
    with pytest.raises(google_errors.BadRequest, match="Unparseable filter"):
        list(client(fake).list_entries(filter_='timestamp>="2026-03-02T10:00:00Z" AND (logName='))


ENTRY = {
    "logName": "projects/acme/logs/policy-action",
    "timestamp": "2026-03-02T10:00:00.123456789Z",
    "jsonPayload": {"connection": {"dest_port": 443, "protocol": "TCP"}, "src": {"pod_name": "web"}},
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('jsonPayload.connection.protocol="tcp"', True),  # strings ignore case
        ("jsonPayload.connection.dest_port=443", True),
        ('jsonPayload.connection.dest_port="443"', True),  # numbers compare as numbers
        ("jsonPayload.connection.dest_port=53", False),
        ('timestamp>="2026-03-02T10:00:00.123456Z"', True),
        ('timestamp<"2026-03-02T10:00:00.123456Z"', False),
        ('timestamp<"2026-03-02T11:00:00+01:00"', False),
        ("jsonPayload.src.pod_name:*", True),
        ("NOT jsonPayload.src.pod_name:*", False),
        ("NOT jsonPayload.dest.pod_name:*", True),
        ('jsonPayload.dest.pod_namespace="x"', False),  # a missing field fails every comparison
        ('NOT jsonPayload.dest.pod_namespace="x"', True),
        ('(jsonPayload.src.pod_name="x" AND logName:*) OR (NOT jsonPayload.dest:*)', True),
    ],
)  # fmt: skip
def test_the_filter_language(query: str, expected: bool) -> None:
    assert compile_filter(query)(ENTRY) is expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # OR binds tighter than AND; side by side (or a line break) is AND
        ("a=0 OR a=1 b=2", True),
        ("a=1 AND b=0 OR b=2", True),
        ("a=1 AND a=0 OR b=0", False),
        ("a=0 OR a=1\nb=0", False),
        ("NOT a=0 b=2", True),
        ("NOT (a=1 b=2)", False),
    ],
)
def test_precedence(query: str, expected: bool) -> None:
    assert compile_filter(query)({"a": 1, "b": 2}) is expected


@pytest.mark.parametrize(
    "query",
    [
        'logName=~"policy"',
        'jsonPayload.src.pod_name:"we"',
        "(logName:*",
        "logName:* )",
        'logName="a" OR',
        "=",
    ],
)
def test_what_the_fake_cannot_read_is_refused(query: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(query)
