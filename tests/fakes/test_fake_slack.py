"""The fake Slack, driven by the real slack_sdk WebClient over HTTP, answers the way Slack does."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack import FakeSlack

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C1", "alerts")
        yield fake


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=fake.token, base_url=fake.base_url, retry_handlers=[])


def error_of(call: Callable[[], object]) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        call()
    return caught.value


def code_of(call: Callable[[], object]) -> str:
    """The `error` of an HTTP 200 `{"ok": false}` answer."""
    error = error_of(call)
    assert error.response.status_code == 200
    return str(error.response["error"])


def button(**overrides: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "Mute"}} | overrides


def test_posts_updates_and_thread_replies_are_stored_like_slack(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C1", text="alert", blocks=[SECTION])
    ts = posted["ts"]
    assert (posted["channel"], posted["message"]["text"]) == ("C1", "alert")
    assert posted["message"]["user"] == fake.bot_user

    reply = client.chat_postMessage(channel="C1", text="new flow", thread_ts=ts)
    assert reply["message"]["thread_ts"] == ts
    updated = client.chat_update(channel="C1", ts=ts, text="alert, resolved", blocks=[SECTION, SECTION])
    assert (updated["ts"], updated["text"]) == (ts, "alert, resolved")

    [message] = fake.messages("C1")  # the reply is in the thread, not the channel
    assert (message.ts, message.text, message.edits) == (ts, "alert, resolved", 1)
    assert message.blocks == [SECTION, SECTION]
    [threaded] = fake.replies("C1", ts)
    assert (threaded.text, threaded.thread_ts, threaded.edits) == ("new flow", ts, 0)
    assert float(threaded.ts) > float(ts)

    assert (
        code_of(lambda: client.chat_postMessage(channel="C1", text="x", thread_ts="1.0"))
        == "thread_not_found"
    )
    assert code_of(lambda: client.chat_postMessage(channel="C404", text="x")) == "channel_not_found"


@pytest.mark.parametrize(
    "blocks",
    [
        pytest.param([SECTION] * 51, id="51 blocks"),
        pytest.param([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], id="section"),
        pytest.param([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}], id="header"),
        pytest.param([{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}], id="mrkdwn header"),
        pytest.param(
            [{"type": "actions", "elements": [button(text={"type": "plain_text", "text": "x" * 76})]}],
            id="button text",
        ),
        pytest.param([{"type": "actions", "elements": [button(action_id="x" * 256)]}], id="action_id"),
        pytest.param([{"type": "actions", "elements": [button(url="x" * 3001)]}], id="url"),
        pytest.param([{"type": "actions", "elements": [button()] * 26}], id="26 elements"),
        pytest.param([{"type": "nonsense"}], id="unknown type"),
    ],
)
def test_block_kit_limits_are_enforced(fake: FakeSlack, client: WebClient, blocks: list[Any]) -> None:
    error = error_of(lambda: client.chat_postMessage(channel="C1", text="t", blocks=blocks))
    assert (error.response.status_code, error.response["error"]) == (200, "invalid_blocks")
    assert "json-pointer:/blocks" in error.response["errors"][0]
    assert fake.messages("C1") == []


def test_limits_themselves_are_accepted_and_text_is_checked(fake: FakeSlack, client: WebClient) -> None:
    at_limit = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}}
    client.chat_postMessage(channel="C1", text="t", blocks=[at_limit] * 50)
    client.chat_postMessage(channel="C1", text="t", blocks=[{"type": "actions", "elements": [button()] * 25}])
    assert len(fake.messages("C1")) == 2
    assert code_of(lambda: client.chat_postMessage(channel="C1", text="x" * 40_001)) == "msg_too_long"
    with pytest.warns(UserWarning, match="text"):  # the SDK warns as well
        assert code_of(lambda: client.chat_postMessage(channel="C1", text="")) == "no_text"
    malformed = {"channel": "C1", "text": "t", "blocks": "[{"}
    assert code_of(lambda: client.api_call("chat.postMessage", data=malformed)) == "invalid_blocks_format"


def test_form_and_json_requests_both_work(fake: FakeSlack, client: WebClient) -> None:
    form = {"channel": "C1", "text": "form", "blocks": json.dumps([SECTION])}
    client.api_call("chat.postMessage", data=form)
    client.api_call("chat.postMessage", json={"channel": "C1", "text": "json", "blocks": [SECTION]})
    assert [(m.text, m.blocks) for m in fake.messages("C1")] == [("form", [SECTION]), ("json", [SECTION])]
    assert [call.params["blocks"] for call in fake.calls_to("chat.postMessage")] == [[SECTION], [SECTION]]


def test_rate_limit_answers_429_with_retry_after(fake: FakeSlack, client: WebClient) -> None:
    fake.rate_limit_next(1, retry_after=7, methods={"chat.postMessage"})
    client.auth_test()  # other methods are not limited
    error = error_of(lambda: client.chat_postMessage(channel="C1", text="t"))
    assert (error.response.status_code, error.response["error"]) == (429, "ratelimited")
    assert error.response.headers["Retry-After"] == "7"
    client.chat_postMessage(channel="C1", text="t")
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]
    assert len(fake.messages("C1")) == 1


def test_server_errors_and_outages(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next(2, status=503)
    for _ in range(2):
        assert error_of(lambda: client.chat_postMessage(channel="C1", text="t")).response.status_code == 503
    client.chat_postMessage(channel="C1", text="t")

    fake.outage(status=500)
    assert error_of(client.auth_test).response.status_code == 500
    assert error_of(lambda: client.chat_update(channel="C1", ts="1.0", text="t")).response.status_code == 500
    fake.restore()
    client.auth_test()
    assert len(fake.messages("C1")) == 1
    assert [c.status for c in fake.calls] == [503, 503, 200, 500, 500, 200]
    assert all(a.at <= b.at for a, b in zip(fake.calls, fake.calls[1:], strict=False))


def test_error_next_answers_200_with_the_error(fake: FakeSlack, client: WebClient) -> None:
    fake.error_next("chat.update", "cant_update_message", count=2)
    ts = client.chat_postMessage(channel="C1", text="t")["ts"]
    for _ in range(2):
        assert code_of(lambda: client.chat_update(channel="C1", ts=ts, text="u")) == "cant_update_message"
    client.chat_update(channel="C1", ts=ts, text="u")
    assert fake.messages("C1")[0].edits == 1


def test_not_in_channel_until_joined(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("C2", "outsider", member=False)
    fake.add_channel("G1", "secret", is_private=True, member=False)
    assert code_of(lambda: client.chat_postMessage(channel="C2", text="t")) == "not_in_channel"
    joined = client.conversations_join(channel="C2")
    assert (joined["channel"]["id"], joined["channel"]["name"]) == ("C2", "outsider")
    client.chat_postMessage(channel="C2", text="t")
    assert len(fake.messages("C2")) == 1
    assert client.conversations_join(channel="C2")["warning"] == "already_in_channel"
    assert code_of(lambda: client.conversations_join(channel="G1")) == "method_not_supported_for_channel_type"


def test_update_of_a_deleted_message_is_message_not_found(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C1", text="t")["ts"]
    fake.delete_message("C1", ts)
    assert fake.messages("C1") == []
    assert code_of(lambda: client.chat_update(channel="C1", ts=ts, text="u")) == "message_not_found"


def test_conversations_list_paginates(fake: FakeSlack, client: WebClient) -> None:
    for n in range(2, 9):
        fake.add_channel(f"C{n}", f"chan-{n}", member=n % 2 == 0)
    fake.add_channel("G1", "mine", is_private=True)
    fake.add_channel("G2", "not-mine", is_private=True, member=False)

    first = client.conversations_list(limit=3)
    assert first["channels"][2] == {
        "id": "C3",
        "name": "chan-3",
        "is_channel": True,
        "is_private": False,
        "is_member": False,
        "is_archived": False,
    }
    pages = [[c["id"] for c in page["channels"]] for page in client.conversations_list(limit=3)]
    assert pages == [["C1", "C2", "C3"], ["C4", "C5", "C6"], ["C7", "C8"]]
    assert len(fake.calls_to("conversations.list")) == 4
    both = client.conversations_list(types="public_channel,private_channel")
    assert [c["id"] for c in both["channels"]][-1] == "G1"  # a bot sees only the private channels it is in
    assert both["response_metadata"]["next_cursor"] == ""
    assert code_of(lambda: client.conversations_list(cursor="not a cursor")) == "invalid_cursor"


def test_lookups_ephemerals_and_unknown_methods(fake: FakeSlack, client: WebClient) -> None:
    fake.add_usergroup("S1", ["U1", "U2"])
    fake.add_user("U1", "alice")
    fake.scopes.add("users:read")  # not the bot's: users.info is the fake's, for tests
    assert client.usergroups_users_list(usergroup="S1")["users"] == ["U1", "U2"]
    assert code_of(lambda: client.usergroups_users_list(usergroup="S9")) == "no_such_subgroup"
    assert client.users_info(user="U1")["user"]["name"] == "alice"
    assert code_of(lambda: client.users_info(user="U9")) == "user_not_found"
    assert client.conversations_info(channel="C1")["channel"]["name"] == "alerts"
    assert code_of(lambda: client.conversations_info(channel="C9")) == "channel_not_found"

    sent = client.chat_postEphemeral(channel="C1", user="U1", text="only you", blocks=[SECTION])
    [ephemeral] = fake.ephemerals
    assert (ephemeral.message_ts, ephemeral.user, ephemeral.text) == (sent["message_ts"], "U1", "only you")
    assert fake.messages("C1") == []
    assert code_of(lambda: client.api_call("chat.delete")) == "unknown_method"


def test_auth(fake: FakeSlack, client: WebClient) -> None:
    auth = client.auth_test()
    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == ("T0TEAM", "U0BOT", "B0BOT")
    wrong = WebClient(token="xoxb-wrong", base_url=fake.base_url, retry_handlers=[])
    assert code_of(wrong.auth_test) == "invalid_auth"
    assert code_of(lambda: wrong.chat_postMessage(channel="C1", text="t")) == "invalid_auth"
    assert code_of(WebClient(base_url=fake.base_url, retry_handlers=[]).auth_test) == "not_authed"
    assert fake.messages("C1") == []


def test_scopes_are_sent_with_every_answer_and_enforced(fake: FakeSlack, client: WebClient) -> None:
    auth = client.auth_test()
    assert set(auth.headers["x-oauth-scopes"].split(",")) == fake.scopes
    assert auth.headers["x-accepted-oauth-scopes"] == ""
    fake.scopes.discard("chat:write")
    error = error_of(lambda: client.chat_postMessage(channel="C1", text="t"))
    assert error.response["error"] == "missing_scope"
    assert error.response["needed"] == "chat:write"
    assert "chat:write" not in error.response["provided"].split(",")
    assert error.response.headers["x-accepted-oauth-scopes"] == "chat:write"
    assert fake.messages("C1") == []


def test_conversations_info_says_membership_per_channel_type(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("C2", "outside", member=False)
    fake.add_channel("G1", "secret", is_private=True, member=True)
    fake.add_channel("G2", "hidden", is_private=True, member=False)
    assert client.conversations_info(channel="C1")["channel"]["is_member"] is True
    outside = client.conversations_info(channel="C2")["channel"]
    assert (outside["is_member"], outside["is_private"]) == (False, False)
    assert client.conversations_info(channel="G1")["channel"]["is_private"] is True
    assert code_of(lambda: client.conversations_info(channel="G2")) == "channel_not_found"
    fake.scopes.discard("groups:read")  # public channels still answer; private ones need groups:read
    assert client.conversations_info(channel="C2")["channel"]["name"] == "outside"
    assert code_of(lambda: client.conversations_info(channel="G1")) == "missing_scope"
    assert (
        code_of(lambda: client.conversations_list(types="public_channel,private_channel")) == "missing_scope"
    )
    assert client.conversations_list(types="public_channel")["channels"]
