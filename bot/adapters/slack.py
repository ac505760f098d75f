"""Slack Web API adapter: the few calls the bot makes, with Slack's failures sorted into kinds the
delivery loop can act on (wait, retry, join, repost, or tell a person what to fix).

The WebClient's own retries are off: the outbox decides when to retry, so a Slack outage delays
alerts instead of blocking a thread or dropping them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

log = logging.getLogger(__name__)

FailureKind = Literal[
    "rate_limited", "unavailable", "not_in_channel", "message_gone", "bad_payload", "permanent"
]

#: What a person must do about each permanent error. Anything else permanent is quoted as is.
ADVICE = {
    "channel_not_found": "the channel does not exist or the bot cannot see it: check the channel ID in the "
    "config, or invite the bot to the private channel (/invite @netlog-bot)",
    "invalid_channel": "the channel does not exist or the bot cannot see it (files.completeUploadExternal's "
    "name for channel_not_found): check the channel ID, or invite the bot (/invite @netlog-bot)",
    "not_in_channel": "the bot is not a member of the channel: invite it (/invite @netlog-bot)",
    "is_archived": "the channel is archived: unarchive it or route these alerts elsewhere",
    "invalid_auth": "SLACK_BOT_TOKEN is not valid for this workspace: reinstall the app and update the token",
    "not_authed": "no SLACK_BOT_TOKEN was sent: set it in the environment",
    "account_inactive": "the bot's token belongs to a deactivated app or user: reinstall the app",
    "token_revoked": "SLACK_BOT_TOKEN was revoked: reinstall the app and update the token",
    "missing_scope": "the bot lacks an OAuth scope (see the README, 'Create the Slack app'), then reinstall",
    "restricted_action": "a workspace admin restricts posting in this channel",
}
_MESSAGE_GONE = {"message_not_found", "thread_not_found", "cant_update_message"}
_BAD_PAYLOAD = {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments"}
_WORKSPACE_WIDE = {"invalid_auth", "not_authed", "account_inactive", "token_revoked"}


class SlackFailure(Exception):
    def __init__(self, kind: FailureKind, error: str, retry_after: float = 0.0) -> None:
        super().__init__(f"{kind}: {error}")
        self.kind = kind
        self.error = error
        self.retry_after = retry_after

    @property
    def workspace_wide(self) -> bool:
        return self.error in _WORKSPACE_WIDE or self.kind == "rate_limited"

    @property
    def what_to_do(self) -> str:
        if self.kind in ("unavailable", "rate_limited"):
            return "Slack did not answer; check the network and NETLOG_SLACK_API_URL, or try again later"
        return ADVICE.get(self.error, "see Slack's error code above")

    def advice(self, channel: str) -> str:
        return f"Slack refused a message for {channel} ({self.error}): {self.what_to_do}"


@dataclass(frozen=True, slots=True)
class Identity:
    team: str
    user: str
    bot_id: str


@dataclass(frozen=True, slots=True)
class SlackCredentials:
    """HTTP mode verifies requests with the signing secret; Socket Mode connects with the app token."""

    bot_token: str
    signing_secret: str | None
    app_token: str | None


def make_client(token: str, base_url: str) -> WebClient:
    # 8 s: a call stuck longer than that is retried from the outbox, and shutdown stays short.
    return WebClient(token=token, base_url=base_url, retry_handlers=[], timeout=8)


#: Told of every Web API call: its method (`chat.postMessage`) and outcome (`ok` or a FailureKind).
CallObserver = Callable[[str, str], None]


class SlackGateway:
    def __init__(self, client: WebClient, observe: CallObserver | None = None) -> None:
        self.client = client
        self.observe = observe
        self._channel_ids: dict[str, str] = {}
        self._lock = threading.Lock()
        #: Since when (monotonic) every call has found Slack unavailable; None while it answers.
        self.unavailable_since: float | None = None
        self.last_failure = ""

    def auth_test(self) -> Identity:
        response = self._call("auth_test")
        return Identity(
            str(response.get("team", "")), str(response.get("user", "")), str(response.get("bot_id", ""))
        )

    def post(self, channel: str, message: Mapping[str, Any], thread_ts: str | None = None) -> str:
        """`message` is `{"text": ..., "blocks": [...]}`, as the renderers make it. Returns its ts."""
        kwargs: dict[str, Any] = {"channel": channel, "text": message["text"], "blocks": message["blocks"]}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        response = self._call("chat_postMessage", unfurl_links=False, unfurl_media=False, **kwargs)
        return str(response["ts"])

    def update(self, channel: str, ts: str, message: Mapping[str, Any]) -> None:
        self._call("chat_update", channel=channel, ts=ts, text=message["text"], blocks=message["blocks"])

    def upload_file(
        self, channel: str, thread_ts: str | None, filename: str, content: bytes, title: str
    ) -> str:
        """Shares `content` as a file in `channel` (in the thread of `thread_ts` when given) through
        Slack's v2 upload flow (files.getUploadURLExternal, a POST of the bytes to the URL it returns,
        files.completeUploadExternal); the legacy files.upload is retired. Returns the file's ID.

        Delivery uploads each digest's chart with it. Failures are SlackFailures as
        for `post`; a failed upload is restarted from the beginning (Slack drops uncompleted uploads), and
        a failed POST to the upload URL, which is not the Web API, counts as "unavailable". Sharing needs
        membership even where posting does not (chat:write.public): "not_in_channel" means join first.
        """
        response = self._call(
            "files_upload_v2",
            channel=channel,
            thread_ts=thread_ts,
            filename=filename,
            content=content,
            title=title,
        )
        return str(response["file"]["id"])

    def usergroup_members(self, group: str) -> list[str]:
        response = self._call("usergroups_users_list", usergroup=group)
        return [str(user) for user in response.get("users", [])]

    def join(self, channel: str) -> None:
        self._call("conversations_join", channel=channel)

    def channel_id(self, channel: str) -> str:
        """IDs pass through; `#name` is looked up once (conversations.list) and cached."""
        if not channel.startswith("#"):
            return channel
        name = channel[1:]
        if name not in self._channel_ids:
            cursor: str | None = None
            while True:
                response = self._call(
                    "conversations_list",
                    types="public_channel,private_channel",
                    exclude_archived=True,
                    limit=200,
                    cursor=cursor,
                )
                for item in response.get("channels", []):
                    self._channel_ids[str(item["name"])] = str(item["id"])
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if name in self._channel_ids or not cursor:
                    break
        if name not in self._channel_ids:
            raise SlackFailure("permanent", "channel_not_found")
        return self._channel_ids[name]

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            response = getattr(self.client, method)(**{k: v for k, v in kwargs.items() if v is not None})
        except SlackApiError as error:
            failure = classify(error)
        except (SlackClientError, OSError) as error:  # connection refused, timeouts, TLS
            failure = SlackFailure("unavailable", type(error).__name__)
        else:
            self._outcome(method, "ok")
            return response
        self._outcome(method, failure.kind, failure.error)
        raise failure

    def _outcome(self, method: str, outcome: str, error: str = "") -> None:
        with self._lock:
            if outcome != "unavailable":
                self.unavailable_since = None  # Slack answered, even if it said no
            elif self.unavailable_since is None:
                self.unavailable_since = time.monotonic()
            if error:
                self.last_failure = error
        if self.observe is not None:
            # The SDK's method name as Slack spells it: chat_postMessage -> chat.postMessage.
            self.observe(method.replace("_", ".", 1), outcome)


def classify(error: SlackApiError) -> SlackFailure:
    response = error.response
    status = response.status_code
    if status == 429:
        retry_after = float(response.headers.get("Retry-After") or response.headers.get("retry-after") or 1)
        return SlackFailure("rate_limited", "ratelimited", retry_after)
    if status >= 500:
        return SlackFailure("unavailable", f"HTTP {status}")
    code = (
        str(response.get("error") or f"HTTP {status}")
        if isinstance(response.data, dict)
        else f"HTTP {status}"
    )
    if code == "not_in_channel":
        return SlackFailure("not_in_channel", code)
    if code in _MESSAGE_GONE:
        return SlackFailure("message_gone", code)
    if code in _BAD_PAYLOAD:
        return SlackFailure("bad_payload", code)
    if code in ("ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"):
        return SlackFailure("unavailable", code)
    return SlackFailure("permanent", code)


#: What to do when Slack cannot be reached at start: the token may be fine.
UNREACHABLE = (
    "check the network (and HTTPS_PROXY, if this host needs one) and NETLOG_SLACK_API_URL if it is set; "
    "the token was not checked"
)


def bot_token_refusal(failure: SlackFailure) -> str:
    """What to fix when auth.test refuses SLACK_BOT_TOKEN at start (or cannot be asked at all)."""
    if failure.kind in ("unavailable", "rate_limited"):
        return f"could not reach Slack to check SLACK_BOT_TOKEN ({failure.error}): {UNREACHABLE}"
    return f"Slack refused SLACK_BOT_TOKEN at auth.test ({failure.error}): {failure.what_to_do}"


def app_token_refusal(error: SlackClientError | OSError) -> str:
    """What to fix when opening the Socket Mode WebSocket (apps.connections.open) fails with `error`:
    the same kind of sentence as `bot_token_refusal`, for SLACK_APP_TOKEN."""
    if isinstance(error, SlackApiError):
        failure = classify(error)
    else:
        failure = SlackFailure("unavailable", type(error).__name__)
    advice = (
        failure.what_to_do
        if failure.kind in ("unavailable", "rate_limited")
        else "set it to an app-level token (xapp-...) with the connections:write scope, from the app's "
        "Basic Information page"
    )
    if failure.kind in ("unavailable", "rate_limited"):
        return f"could not reach Slack to open the Socket Mode connection ({failure.error}): {UNREACHABLE}"
    return f"Slack refused SLACK_APP_TOKEN at apps.connections.open ({failure.error}): {advice}"


def app_token_problem(token: str, base_url: str, timeout: int) -> str | None:
    """None when Slack hands out a Socket Mode URL for SLACK_APP_TOKEN (apps.connections.open; the
    URL is left unused, so nothing connects), else what to fix, as `app_token_refusal` says it."""
    client = make_client(token, base_url)
    client.timeout = timeout
    try:
        client.apps_connections_open(app_token=token)
    except (SlackClientError, OSError) as error:
        return app_token_refusal(error)
    return None


# --- `netlog-bot check`: what the token may do, and where the bot stands in each channel ---------

#: The bot token scopes the bot's calls need, and all it asks for: the app manifests in config/
#: list exactly these (a test compares them). `check` reports any the token lacks.
BOT_SCOPES = (
    "chat:write",  # chat.postMessage, chat.update, chat.postEphemeral
    "files:write",  # the digest's chart (files.getUploadURLExternal, files.completeUploadExternal)
    "channels:join",  # conversations.join, for a public alert channel it was not invited to
    "channels:read",  # conversations.list / conversations.info on public channels (#name lookups)
    "groups:read",  # the same for private channels it was invited to
    "commands",  # the /netlog slash command
    "usergroups:read",  # usergroups.users.list, for access.operator_groups
)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    identity: Identity
    #: The scopes Slack granted the token, from the `x-oauth-scopes` header it sends with every
    #: Web API answer; None when the answer had no such header (a proxy may strip it).
    scopes: frozenset[str] | None

    def missing(self) -> tuple[str, ...]:
        return tuple(scope for scope in BOT_SCOPES if self.scopes is not None and scope not in self.scopes)


@dataclass(frozen=True, slots=True)
class ChannelState:
    id: str
    name: str
    is_private: bool
    is_member: bool
    is_archived: bool


def token_grant(gateway: SlackGateway) -> TokenGrant:
    """auth.test, and the scopes its answer's headers say the token has. Raises `SlackFailure`."""
    response = _checked(gateway.client.auth_test)
    headers = {str(name).lower(): str(value) for name, value in (response.headers or {}).items()}
    granted = headers.get("x-oauth-scopes")
    identity = Identity(
        str(response.get("team", "")), str(response.get("user", "")), str(response.get("bot_id", ""))
    )
    scopes = None if granted is None else frozenset(s.strip() for s in granted.split(",") if s.strip())
    return TokenGrant(identity, scopes)


def channel_state(gateway: SlackGateway, channel: str) -> ChannelState:
    """conversations.info on `channel` (an ID, or a `#name` looked up as delivery looks it up).
    Slack answers channel_not_found for a private channel the bot is not in. Raises `SlackFailure`."""
    channel_id = gateway.channel_id(channel)
    info = _checked(gateway.client.conversations_info, channel=channel_id).get("channel") or {}
    return ChannelState(
        str(info.get("id") or channel_id),
        str(info.get("name") or channel.lstrip("#")),
        bool(info.get("is_private")),
        bool(info.get("is_member")),
        bool(info.get("is_archived")),
    )


def _checked(method: Any, **kwargs: Any) -> Any:
    try:
        return method(**kwargs)
    except SlackApiError as error:
        raise classify(error) from None
    except (SlackClientError, OSError) as error:  # connection refused, timeouts, TLS
        raise SlackFailure("unavailable", type(error).__name__) from None
