"""File uploads through Slack's v2 flow: `SlackGateway.upload_file` (the real WebClient's
files_upload_v2) against the fake Slack over HTTP. A chart-sized PNG lands in a thread with its bytes;
429s, 5xx and refusals at each of the three steps surface as SlackFailures the caller can act on; the
fake's own checks (lengths, unknown files, channels) answer with Slack's error codes."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.adapters.slack import SlackFailure, SlackGateway, make_client
from tests.fakes.slack import UPLOAD, FakeSlack

#: A PNG's signature and IHDR, padded to the size of a day's chart (tens of kB), every byte value in it.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 160
MESSAGE = {"text": "Daily digest", "blocks": []}


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C0DIGEST", "digest")
        fake.add_channel("C0OUTSIDE", "elsewhere", member=False)
        yield fake


@pytest.fixture
def gateway(fake: FakeSlack) -> SlackGateway:
    return SlackGateway(make_client(fake.token, fake.base_url))


def failure_of(gateway: SlackGateway, channel: str = "C0DIGEST") -> SlackFailure:
    with pytest.raises(SlackFailure) as caught:
        gateway.upload_file(channel, None, "chart.png", PNG, "Denied attempts per hour")
    return caught.value


def test_a_chart_lands_in_the_thread_with_its_bytes(fake: FakeSlack, gateway: SlackGateway) -> None:
    thread_ts = gateway.post("C0DIGEST", MESSAGE)
    file_id = gateway.upload_file("C0DIGEST", thread_ts, "chart.png", PNG, "Denied attempts per hour")

    [shared] = fake.files("C0DIGEST")
    assert (shared.id, shared.name, shared.title) == (file_id, "chart.png", "Denied attempts per hour")
    assert (shared.content, shared.thread_ts) == (PNG, thread_ts)
    steps = [(c.method, c.status) for c in fake.calls if c.method != "chat.postMessage"]
    assert steps == [
        ("files.getUploadURLExternal", 200),
        (UPLOAD, 200),
        ("files.completeUploadExternal", 200),
    ]
    assert fake.calls_to("files.getUploadURLExternal")[0].params["length"] == str(len(PNG))
    assert fake.replies("C0DIGEST", thread_ts) == []  # a file share is not a chat message here
    assert fake.files("C0OUTSIDE") == []


def test_a_top_level_upload_has_no_thread(fake: FakeSlack, gateway: SlackGateway) -> None:
    gateway.upload_file("C0DIGEST", None, "chart.png", b"x", "t")
    assert [(f.content, f.thread_ts) for f in fake.files("C0DIGEST")] == [(b"x", None)]


def test_429_on_get_upload_url_is_rate_limited_and_nothing_lands(
    fake: FakeSlack, gateway: SlackGateway
) -> None:
    fake.rate_limit_next(1, retry_after=9, methods={"files.getUploadURLExternal"})
    failure = failure_of(gateway)
    assert (failure.kind, failure.retry_after, failure.workspace_wide) == ("rate_limited", 9.0, True)
    assert fake.files("C0DIGEST") == []
    assert fake.calls_to(UPLOAD) == []  # the flow stopped at its first step
    gateway.upload_file("C0DIGEST", None, "chart.png", PNG, "later")  # a retry goes through
    assert [f.title for f in fake.files("C0DIGEST")] == ["later"]


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_on_complete_is_unavailable_and_a_retry_starts_over(
    fake: FakeSlack, gateway: SlackGateway, status: int
) -> None:
    fake.fail_next(1, status=status, methods={"files.completeUploadExternal"})
    failure = failure_of(gateway)
    assert (failure.kind, failure.error) == ("unavailable", f"HTTP {status}")
    assert fake.files("C0DIGEST") == []  # uploaded but never completed: not shared
    retried = gateway.upload_file("C0DIGEST", None, "chart.png", PNG, "t")
    [shared] = fake.files("C0DIGEST")
    assert shared.id == retried
    assert len(fake.calls_to("files.getUploadURLExternal")) == 2  # a new upload, not the stale one


def test_a_failing_upload_url_is_unavailable(fake: FakeSlack, gateway: SlackGateway) -> None:
    fake.fail_next(1, status=503, methods={UPLOAD})
    assert failure_of(gateway).kind == "unavailable"
    assert fake.calls_to("files.completeUploadExternal") == []
    fake.outage(status=500)
    assert failure_of(gateway).kind == "unavailable"


def test_an_unknown_channel_is_slacks_invalid_channel(fake: FakeSlack, gateway: SlackGateway) -> None:
    failure = failure_of(gateway, "C0MISSING")
    assert (failure.kind, failure.error) == ("permanent", "invalid_channel")
    assert "does not exist" in failure.advice("C0MISSING")


def test_sharing_needs_membership(fake: FakeSlack, gateway: SlackGateway) -> None:
    assert failure_of(gateway, "C0OUTSIDE").kind == "not_in_channel"
    gateway.join("C0OUTSIDE")
    gateway.upload_file("C0OUTSIDE", None, "chart.png", PNG, "t")
    assert len(fake.files("C0OUTSIDE")) == 1


def test_injected_error_codes_are_permanent(fake: FakeSlack, gateway: SlackGateway) -> None:
    fake.error_next("files.getUploadURLExternal", "file_uploads_disabled")
    failure = failure_of(gateway)
    assert (failure.kind, failure.error) == ("permanent", "file_uploads_disabled")
    fake.error_next("files.completeUploadExternal", "missing_scope")
    failure = failure_of(gateway)
    assert (failure.kind, failure.error) == ("permanent", "missing_scope")


# -- the fake's own checks, with the bare WebClient


def code_of(call: Callable[[], object]) -> str:
    with pytest.raises(SlackApiError) as caught:
        call()
    return str(caught.value.response["error"])


def test_the_fake_checks_what_slack_checks(fake: FakeSlack) -> None:
    client = WebClient(token=fake.token, base_url=fake.base_url, retry_handlers=[])
    get_url = client.files_getUploadURLExternal
    assert code_of(lambda: get_url(filename="a.png", length=0)) == "missing_argument"
    assert code_of(lambda: get_url(filename="", length=3)) == "invalid_arguments"
    assert code_of(lambda: get_url(filename="a.png", length=3, alt_txt="x" * 1001)) == "alt_txt_too_large"

    ticket = get_url(filename="a.png", length=3)
    complete = client.files_completeUploadExternal
    never_uploaded = [{"id": ticket["file_id"], "title": "t"}]
    assert code_of(lambda: complete(files=never_uploaded, channel_id="C0DIGEST")) == "file_not_found"
    assert code_of(lambda: complete(files=[{"id": "F404", "title": "t"}])) == "file_not_found"

    def post(data: bytes) -> tuple[int, str]:
        request = urllib.request.Request(ticket["upload_url"], data=data, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    assert post(b"toolong")[0] == 400  # not the length announced
    assert post(b"abc") == (200, "OK - 3")
    done = complete(files=[{"id": ticket["file_id"], "title": "t"}], channel_id="C0DIGEST")
    assert [(f["id"], f["title"], f["size"]) for f in done["files"]] == [(ticket["file_id"], "t", 3)]
    assert post(b"abc")[0] == 404  # a completed upload's URL is spent
    assert code_of(lambda: complete(files=never_uploaded)) == "file_not_found"  # completed once only
