"""A fake Slack Web API: a real HTTP server on loopback that keeps state the way Slack does.

The real `slack_sdk.WebClient` (and so Bolt) talks to it through `base_url`, and a bot running in
another process can reach it through NETLOG_SLACK_API_URL: nothing is patched, every request goes
through the SDK's own encoding, headers and error handling. It is faithful where our code can tell
the difference: requests arrive as POSTs to `/api/<method>`, form-encoded or JSON, with a bearer
token; answers are HTTP 200 with `{"ok": false, "error": ...}` for API errors, 429 with
`Retry-After` for rate limits and 5xx for outages; messages get unique, increasing `ts` strings;
Block Kit limits are enforced with Slack's error names (`invalid_blocks` with json-pointer
`errors`, `msg_too_long`, `no_text`); channel membership, threads, pagination cursors and edits
behave like Slack's. Faults (5xx, 429, error codes, outages, deleted messages) can be injected.
File uploads follow Slack's v2 flow (what `files_upload_v2` does): `files.getUploadURLExternal` hands
out an upload URL on this server, the bytes are POSTed there raw (no token, as to files.slack.com),
and `files.completeUploadExternal` shares the file into a channel or thread; `files(channel)` shows
what landed. The upload URL takes faults under the name `UPLOAD` (a status only: it is not the API).
With a `FakeSocketMode` attached, `apps.connections.open` (the app-level token's only method here)
hands out its ws:// URLs as Slack hands out wss:// ones.
OAuth scopes are Slack's: the bot token holds `scopes` (by default what the app manifests ask for),
every answer to it carries them in the `x-oauth-scopes` header (and the method's own in
`x-accepted-oauth-scopes`), and a method whose scope the token lacks answers `missing_scope` with
`needed` and `provided`; conversations.info and conversations.list need `channels:read` for public
channels and `groups:read` for private ones, as Slack asks per channel type.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.server import LoopbackServer
from tests.fakes.socket_mode import FakeSocketMode

JSON = dict[str, Any]
BLOCK_TYPES = {"section", "header", "actions", "context", "divider", "image", "rich_text", "input", "file"}
BLOCK_TYPES |= {"video", "markdown"}
SERVER_ERRORS = {500: "internal_error", 503: "service_unavailable"}
APP_TOKEN_METHODS = {"apps.connections.open"}  # take the app-level token (xapp-), and only it
UPLOAD = "upload"  # the upload URL, as named in `calls` and in fault injection's `methods`
UPLOAD_PATH = "/upload/v1/"
_Answer = tuple[int, dict[str, str], JSON]  # HTTP status, extra headers, body
#: The bot token scopes of the app manifests in config/: what a token has unless a test says otherwise.
MANIFEST_SCOPES = frozenset(
    {
        "chat:write",
        "files:write",
        "channels:join",
        "channels:read",
        "groups:read",
        "commands",
        "usergroups:read",
    }
)
#: The scope each method needs, as Slack's method reference lists it (channel-type ones apart).
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "conversations.join": "channels:join",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "usergroups.users.list": "usergroups:read",
    "users.info": "users:read",
}
#: The read scope per channel type, for conversations.info and conversations.list.
TYPE_SCOPES = {"public_channel": "channels:read", "private_channel": "groups:read"}


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_member: bool = True
    is_archived: bool = False

    def info(self) -> JSON:
        return asdict(self) | {"is_channel": True}


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[Any]
    thread_ts: str | None
    user: str
    edits: int = 0


@dataclass
class Ephemeral:
    channel: str
    user: str
    message_ts: str
    text: str
    blocks: list[Any]
    thread_ts: str | None


@dataclass
class File:
    """An upload: announced by getUploadURLExternal, filled by the upload URL, shared on completion."""

    id: str
    name: str
    length: int  # as announced; the upload must match it
    alt_txt: str | None
    content: bytes | None = None  # None until uploaded
    title: str = ""
    channel: str | None = None  # None: completed without a channel, private to the bot
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


@dataclass
class Call:
    method: str
    params: JSON
    status: int
    at: float
    response: JSON


@dataclass
class _Fault:
    status: int
    remaining: float  # inf for an outage
    methods: set[str] | None
    retry_after: int = 0


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.body: JSON = {"ok": False, "error": error, **extra}


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in {"1", "true"}


def _text_errors(obj: Any, limit: int, at: str, *, plain_only: bool = False) -> list[str]:
    kinds = {"plain_text"} if plain_only else {"plain_text", "mrkdwn"}
    if not isinstance(obj, dict) or obj.get("type") not in kinds or not isinstance(obj.get("text"), str):
        return [f"must be a {' or '.join(sorted(kinds))} text object [json-pointer:{at}]"]
    if not obj["text"]:
        return [f"must be more than 0 characters [json-pointer:{at}/text]"]
    if len(obj["text"]) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{at}/text]"]
    return []


def _element_errors(element: Any, at: str) -> list[str]:
    if not isinstance(element, dict) or "type" not in element:
        return [f"must be an element object [json-pointer:{at}]"]
    errors = []
    if element["type"] == "button":
        errors += _text_errors(element.get("text"), 75, f"{at}/text", plain_only=True)
    for key, limit in (("action_id", 255), ("url", 3000), ("value", 2000)):
        if len(str(element.get(key, ""))) > limit:
            errors.append(f"must be less than {limit + 1} characters [json-pointer:{at}/{key}]")
    return errors


def _context_element_errors(element: Any, at: str) -> list[str]:
    if isinstance(element, dict) and element.get("type") == "image":
        return []
    return _text_errors(element, 3000, at)


def block_errors(blocks: list[Any], most: int = 50) -> list[str]:
    """Slack's Block Kit checks for the blocks we use, worded like Slack's `errors` array. A message
    holds at most 50 blocks, a modal or home view 100."""
    errors = [f"no more than {most} items allowed [json-pointer:/blocks]"] if len(blocks) > most else []
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            errors.append(f"unsupported type [json-pointer:{at}/type]")
            continue
        if len(str(block.get("block_id", ""))) > 255:
            errors.append(f"must be less than 256 characters [json-pointer:{at}/block_id]")
        kind, fields, elements = block["type"], block.get("fields", []), block.get("elements", [])
        if kind == "section":
            if "text" not in block and not fields:
                errors.append(f"must provide either text or fields [json-pointer:{at}]")
            if "text" in block:
                errors += _text_errors(block["text"], 3000, f"{at}/text")
            if len(fields) > 10:
                errors.append(f"no more than 10 items allowed [json-pointer:{at}/fields]")
            for j, item in enumerate(fields):
                errors += _text_errors(item, 2000, f"{at}/fields/{j}")
            if "accessory" in block:
                errors += _element_errors(block["accessory"], f"{at}/accessory")
        elif kind == "header":
            errors += _text_errors(block.get("text"), 150, f"{at}/text", plain_only=True)
        elif kind in {"actions", "context"}:
            most = 25 if kind == "actions" else 10
            if not elements or len(elements) > most:
                errors.append(f"must have 1 to {most} items [json-pointer:{at}/elements]")
            for j, element in enumerate(elements):
                check = _element_errors if kind == "actions" else _context_element_errors
                errors += check(element, f"{at}/elements/{j}")
    return errors


class FakeSlack(LoopbackServer):
    def __init__(
        self,
        token: str = "xoxb-test-token",
        team: str = "T0TEAM",
        bot_user: str = "U0BOT",
        app_token: str = "xapp-1-A0NETLOG-1-test",
    ) -> None:
        super().__init__(_handler_for(self))
        self.token, self.team, self.bot_user, self.bot_id = token, team, bot_user, f"B{bot_user[1:]}"
        self.app_token = app_token
        self.scopes: set[str] = set(MANIFEST_SCOPES)  # the bot token's; change to test missing ones
        self.socket_mode: FakeSocketMode | None = None
        self.channels: dict[str, Channel] = {}
        self.ephemerals: list[Ephemeral] = []
        self.calls: list[Call] = []
        self.users: dict[str, str] = {bot_user: "netlog"}
        self.usergroups: dict[str, list[str]] = {}
        self._stored: dict[str, list[Message]] = {}  # per channel, top-level and replies, in post order
        self._faults: list[_Fault] = []
        self._outage: _Fault | None = None
        self._errors: dict[str, list[str]] = {}
        self._tick = 0
        self._lock = threading.RLock()
        self._responses: dict[str, list[dict[str, Any]]] = {}
        self._home_views: dict[str, JSON] = {}  # per user, the view views.publish last accepted
        self._files: dict[str, File] = {}  # by id, in the order their upload URLs were handed out
        self._tickets: dict[str, str] = {}  # upload URL ticket -> file id

    @property
    def base_url(self) -> str:
        return f"{self.root}/api/"

    # -- state
    def add_channel(
        self, channel_id: str, name: str, *, is_private: bool = False, member: bool = True
    ) -> None:
        with self._lock:
            self.channels[channel_id] = Channel(channel_id, name, is_private, member)

    def add_user(self, user_id: str, name: str) -> None:
        with self._lock:
            self.users[user_id] = name

    def add_usergroup(self, group_id: str, users: list[str]) -> None:
        with self._lock:
            self.usergroups[group_id] = list(users)

    def messages(self, channel: str) -> list[Message]:
        with self._lock:
            return [m for m in self._stored.get(channel, []) if m.thread_ts is None]

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        with self._lock:
            return [m for m in self._stored.get(channel, []) if m.thread_ts == thread_ts]

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def response_url(self, name: str) -> str:
        """A response_url for a slash command or button payload; answers land in `responses(name)`."""
        return f"{self.root}/response/{name}"

    def record_response(self, name: str, body: bytes) -> None:
        with self._lock:
            self._responses.setdefault(name, []).append(json.loads(body or b"{}"))

    def responses(self, name: str) -> list[dict[str, Any]]:
        """What the app sent to that response_url, in order (text, blocks, response_type, ...)."""
        with self._lock:
            return list(self._responses.get(name, []))

    def home_view(self, user: str) -> JSON | None:
        """The Home tab `user` sees: the view last published for them, or None."""
        with self._lock:
            return self._home_views.get(user)

    def files(self, channel: str) -> list[File]:
        """Files shared into `channel` (top level or in threads: see `thread_ts`), oldest upload first."""
        with self._lock:
            return [f for f in self._files.values() if f.completed and f.channel == channel]

    def delete_message(self, channel: str, ts: str) -> None:
        with self._lock:
            self._stored[channel] = [m for m in self._stored.get(channel, []) if m.ts != ts]

    # -- fault injection
    def fail_next(self, count: int, *, status: int = 503, methods: set[str] | None = None) -> None:
        with self._lock:
            self._faults.append(_Fault(status, count, methods))

    def rate_limit_next(self, count: int, *, retry_after: int = 1, methods: set[str] | None = None) -> None:
        with self._lock:
            self._faults.append(_Fault(429, count, methods, retry_after))

    def outage(self, *, status: int = 503, methods: set[str] | None = None) -> None:
        """Every call (or every call to `methods`) fails with `status` until `restore()`."""
        with self._lock:
            self._outage = _Fault(status, float("inf"), methods)

    def restore(self) -> None:
        with self._lock:
            self._outage = None

    def error_next(self, method: str, error: str, count: int = 1) -> None:
        with self._lock:
            self._errors.setdefault(method, []).extend([error] * count)

    # -- the server side
    def handle(self, method: str, query: str, content_type: str, body: bytes, auth: str) -> _Answer:
        """Answer one request with (HTTP status, extra headers, JSON body)."""
        with self._lock:
            at, token = time.monotonic(), auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            params: JSON = dict(parse_qsl(query, keep_blank_values=True))
            bad_json = False
            if content_type.startswith("application/json"):
                try:
                    parsed = json.loads(body or b"{}")
                except ValueError:
                    parsed = None
                bad_json = not isinstance(parsed, dict)
                params.update(parsed if isinstance(parsed, dict) else {})
            else:  # form-encoded; a form may carry the token as a field
                params.update(parse_qsl(body.decode(), keep_blank_values=True))
                token = token or params.pop("token", None)
            for name in ("blocks", "view"):
                if isinstance(params.get(name), str) and params[name]:
                    with contextlib.suppress(ValueError):  # if malformed, answered as Slack does
                        params[name] = json.loads(params[name])
            status, headers, response = self._respond(method, params, token, bad_json)
            self.calls.append(Call(method, params, status, at, response))
            return status, headers, response

    def receive_upload(self, ticket: str, body: bytes) -> tuple[int, dict[str, str], str]:
        """Answer a POST of raw bytes to an upload URL, as files.slack.com does: 200 `OK - <length>`."""
        with self._lock:
            at = time.monotonic()
            status, headers, text = self._receive_upload(ticket, body)
            self.calls.append(
                Call(UPLOAD, {"ticket": ticket, "length": len(body)}, status, at, {"text": text})
            )
            return status, headers, text

    def _receive_upload(self, ticket: str, body: bytes) -> tuple[int, dict[str, str], str]:
        fault = self._injected_fault(UPLOAD)
        if fault is not None:
            status, headers, response = fault
            return status, headers, str(response["error"])
        file = self._files.get(self._tickets.get(ticket, ""))
        if file is None or file.completed:
            return 404, {}, "unknown upload URL"
        if len(body) != file.length:  # getUploadURLExternal's `length` is a promise the upload keeps
            return 400, {}, f"expected {file.length} bytes, got {len(body)}"
        file.content = body
        return 200, {}, f"OK - {len(body)}"

    def _injected_fault(self, method: str) -> _Answer | None:
        fault = self._outage if self._outage and self._applies(self._outage, method) else None
        fault = fault or next((f for f in self._faults if self._applies(f, method)), None)
        if fault is None:
            return None
        fault.remaining -= 1
        self._faults = [f for f in self._faults if f.remaining > 0]
        if fault.status == 429:
            return 429, {"Retry-After": str(fault.retry_after)}, {"ok": False, "error": "ratelimited"}
        return fault.status, {}, {"ok": False, "error": SERVER_ERRORS.get(fault.status, "fatal_error")}

    def _respond(self, method: str, params: JSON, token: str | None, bad_json: bool) -> _Answer:
        fault = self._injected_fault(method)
        if fault is not None:
            return fault
        headers: dict[str, str] = {}
        try:
            if bad_json:
                raise _ApiError("invalid_json")
            if not token:
                raise _ApiError("not_authed")
            if token != (self.app_token if method in APP_TOKEN_METHODS else self.token):
                known = token in (self.token, self.app_token)
                raise _ApiError("not_allowed_token_type" if known else "invalid_auth")
            if token == self.token:
                headers = self._scope_headers(method)
            if self._errors.get(method):
                raise _ApiError(self._errors[method].pop(0))
            api: Callable[[JSON], JSON] | None = getattr(self, f"_api_{method.replace('.', '_')}", None)
            if api is None:
                raise _ApiError("unknown_method")
            if token == self.token:
                self._require_scope(method, params)
            return 200, headers, {"ok": True, **api(params)}
        except _ApiError as error:
            return 200, headers, error.body

    def _scope_headers(self, method: str) -> dict[str, str]:
        """What Slack sends with every answer to a bot token: its scopes, and the method's."""
        headers = {"x-oauth-scopes": ",".join(sorted(self.scopes))}
        accepted = METHOD_SCOPES.get(method) or (
            ",".join(TYPE_SCOPES.values()) if "conversations." in method else ""
        )
        return headers | {"x-accepted-oauth-scopes": accepted}

    def _require_scope(self, method: str, params: JSON) -> None:
        needed = METHOD_SCOPES.get(method)
        if method == "conversations.info":
            channel = self.channels.get(str(params.get("channel", "")))
            kind = "private_channel" if channel is not None and channel.is_private else "public_channel"
            needed = TYPE_SCOPES[kind]
        elif method == "conversations.list":
            kinds = str(params.get("types") or "public_channel").split(",")
            needed = next((TYPE_SCOPES[k] for k in kinds if TYPE_SCOPES.get(k, "") not in self.scopes), None)
        if needed and needed not in self.scopes:
            raise _ApiError("missing_scope", needed=needed, provided=",".join(sorted(self.scopes)))

    @staticmethod
    def _applies(fault: _Fault, method: str) -> bool:
        return fault.methods is None or method in fault.methods

    def _next_ts(self) -> str:
        self._tick += 1
        micros = 1_700_000_000_000_000 + self._tick * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _channel(self, params: JSON, *, to_post: bool) -> Channel:
        channel = self.channels.get(str(params.get("channel", "")))
        if channel is None or (channel.is_private and not channel.is_member):
            raise _ApiError("channel_not_found")  # a bot cannot see private channels it is not in
        if to_post and channel.is_archived:
            raise _ApiError("is_archived")
        if to_post and not channel.is_member:
            raise _ApiError("not_in_channel")
        return channel

    def _content(self, params: JSON, current: Message | None = None) -> tuple[str, list[Any]]:
        text = str(params.get("text") or "")
        blocks = params.get("blocks") or ([] if current is None or "blocks" in params else current.blocks)
        if not isinstance(blocks, list):
            raise _ApiError("invalid_blocks_format")
        errors = block_errors(blocks)
        if errors:
            raise _ApiError(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        if len(text) > 40_000:
            raise _ApiError("msg_too_long")
        if not text.strip() and not blocks and not params.get("attachments"):
            raise _ApiError("no_text")
        return text, blocks

    def _message_json(self, msg: Message) -> JSON:
        body: JSON = {
            "type": "message",
            "text": msg.text,
            "user": msg.user,
            "bot_id": self.bot_id,
            "ts": msg.ts,
        }
        body |= {"team": self.team, "blocks": msg.blocks}
        return body | ({"thread_ts": msg.thread_ts} if msg.thread_ts else {})

    # -- the methods, named after Slack's
    def _api_apps_connections_open(self, params: JSON) -> JSON:
        if self.socket_mode is None:  # no endpoint attached: as unknown as any method the fake lacks
            raise _ApiError("unknown_method")
        return {"url": self.socket_mode.issue_url()}

    def _api_auth_test(self, params: JSON) -> JSON:
        team = {"url": f"https://{self.team.lower()}.slack.com/", "team": "Fake Team", "team_id": self.team}
        bot = {"user": self.users[self.bot_user], "user_id": self.bot_user, "bot_id": self.bot_id}
        return team | bot | {"is_enterprise_install": False}

    def _api_chat_postMessage(self, params: JSON) -> JSON:
        channel = self._channel(params, to_post=True)
        text, blocks = self._content(params)
        thread_ts = str(params.get("thread_ts") or "") or None
        stored = self._stored.setdefault(channel.id, [])
        if thread_ts and not any(m.ts == thread_ts and m.thread_ts is None for m in stored):
            raise _ApiError("thread_not_found")
        msg = Message(channel.id, self._next_ts(), text, blocks, thread_ts, self.bot_user)
        stored.append(msg)
        return {"channel": channel.id, "ts": msg.ts, "message": self._message_json(msg)}

    def _api_chat_update(self, params: JSON) -> JSON:
        channel = self._channel(params, to_post=False)
        ts = str(params.get("ts", ""))
        msg = next((m for m in self._stored.get(channel.id, []) if m.ts == ts), None)
        if msg is None:
            raise _ApiError("message_not_found")
        msg.text, msg.blocks = self._content(params, msg)
        msg.edits += 1
        return {"channel": channel.id, "ts": ts, "text": msg.text, "message": self._message_json(msg)}

    def _api_chat_postEphemeral(self, params: JSON) -> JSON:
        channel = self._channel(params, to_post=True)
        if not params.get("user"):
            raise _ApiError("user_not_in_channel")
        text, blocks = self._content(params)
        ts, thread_ts = self._next_ts(), str(params.get("thread_ts") or "") or None
        self.ephemerals.append(Ephemeral(channel.id, str(params["user"]), ts, text, blocks, thread_ts))
        return {"message_ts": ts}

    def _api_files_getUploadURLExternal(self, params: JSON) -> JSON:
        filename, alt_txt = str(params.get("filename") or ""), params.get("alt_txt")
        if not filename:
            raise _ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing filename"]})
        try:
            length = int(params.get("length") or 0)
        except (TypeError, ValueError) as error:
            raise _ApiError("invalid_arguments") from error
        if length <= 0:
            raise _ApiError("missing_argument")  # Slack's answer to a length of 0
        if alt_txt is not None and len(str(alt_txt)) > 1000:
            raise _ApiError("alt_txt_too_large")
        file = File(
            f"F{len(self._files) + 1:09d}", filename, length, None if alt_txt is None else str(alt_txt)
        )
        ticket = f"{file.id}-{self._next_ts()}"
        self._files[file.id], self._tickets[ticket] = file, file.id
        return {"upload_url": f"{self.root}{UPLOAD_PATH}{ticket}", "file_id": file.id}

    def _api_files_completeUploadExternal(self, params: JSON) -> JSON:
        try:
            wanted = (
                json.loads(params["files"]) if isinstance(params.get("files"), str) else params.get("files")
            )
        except ValueError as error:
            raise _ApiError("invalid_arguments") from error
        if not isinstance(wanted, list) or not wanted or not all(isinstance(w, dict) for w in wanted):
            raise _ApiError("invalid_arguments")
        found = [self._files.get(str(w.get("id", ""))) for w in wanted]
        files = [f for f in found if f is not None and f.content is not None and not f.completed]
        if len(files) != len(wanted):
            raise _ApiError("file_not_found")  # unknown id, or its bytes never reached the upload URL
        channel = self._upload_channel(str(params.get("channel_id") or params.get("channels") or ""))
        thread_ts = str(params.get("thread_ts") or "") or None
        shared = []
        for file, item in zip(files, wanted, strict=True):
            file.title = str(item.get("title") or file.name)
            file.channel, file.thread_ts, file.completed = channel, thread_ts, True
            file.initial_comment = str(params.get("initial_comment") or "") or None
            shared.append(self._file_json(file))
        return {"files": shared}

    def _upload_channel(self, channel_id: str) -> str | None:
        if not channel_id:
            return None  # Slack keeps the file private to the uploader
        try:  # sharing needs membership, as posting does, even with chat:write.public
            return self._channel({"channel": channel_id}, to_post=True).id
        except _ApiError as error:
            if error.body["error"] == "channel_not_found":
                raise _ApiError("invalid_channel") from None  # this method's name for it
            raise

    def _file_json(self, file: File) -> JSON:
        # Slack shares asynchronously: the answer's `shares` and `channels` are still empty.
        body: JSON = {"id": file.id, "name": file.name, "title": file.title, "size": len(file.content or b"")}
        body |= {"user": self.bot_user, "mode": "hosted", "shares": {}, "channels": []}
        return body | ({"alt_txt": file.alt_txt} if file.alt_txt else {})

    def _api_views_publish(self, params: JSON) -> JSON:
        user, view = str(params.get("user_id") or ""), params.get("view")
        if not user or not isinstance(view, dict):
            raise _ApiError("invalid_arguments")
        if view.get("type") != "home":
            raise _ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] view type"]})
        blocks = view.get("blocks")
        errors = block_errors(blocks, most=100) if isinstance(blocks, list) else ["must be an array"]
        if errors:  # views answer bad blocks with invalid_arguments, not messages' invalid_blocks
            messages = [f"[ERROR] {e}" for e in errors]
            raise _ApiError("invalid_arguments", response_metadata={"messages": messages})
        published = {"id": f"V{len(self._home_views) + 1:08d}", "type": "home", "blocks": blocks}
        self._home_views[user] = published
        return {"view": published}

    def _api_conversations_join(self, params: JSON) -> JSON:
        channel = self.channels.get(str(params.get("channel", "")))
        if channel is None:
            raise _ApiError("channel_not_found")
        if channel.is_private:
            raise _ApiError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise _ApiError("is_archived")
        already = {"warning": "already_in_channel", "response_metadata": {"warnings": ["already_in_channel"]}}
        extra = already if channel.is_member else {}
        channel.is_member = True
        return {"channel": channel.info(), **extra}

    def _api_conversations_list(self, params: JSON) -> JSON:
        types = set(str(params.get("types") or "public_channel").split(","))
        skip_archived = _flag(params.get("exclude_archived"))
        visible = [
            c
            for c in self.channels.values()
            if ("private_channel" if c.is_private else "public_channel") in types
            and (c.is_member or not c.is_private)
            and not (skip_archived and c.is_archived)
        ]
        try:
            limit = min(int(params.get("limit") or 100), 1000)
        except ValueError as error:
            raise _ApiError("invalid_limit") from error
        cursor, limit = str(params.get("cursor") or ""), limit if limit > 0 else 100
        try:  # opaque to clients, like Slack's base64 cursors
            start = (
                int(base64.b64decode(cursor, validate=True).decode().removeprefix("offset:")) if cursor else 0
            )
        except ValueError as error:
            raise _ApiError("invalid_cursor") from error
        if start < 0:
            raise _ApiError("invalid_cursor")
        end = start + limit
        next_cursor = base64.b64encode(f"offset:{end}".encode()).decode() if end < len(visible) else ""
        page = [c.info() for c in visible[start:end]]
        return {"channels": page, "response_metadata": {"next_cursor": next_cursor}}

    def _api_conversations_info(self, params: JSON) -> JSON:
        return {"channel": self._channel(params, to_post=False).info()}

    def _api_usergroups_users_list(self, params: JSON) -> JSON:
        group = str(params.get("usergroup", ""))
        if group not in self.usergroups:
            raise _ApiError("no_such_subgroup")
        return {"users": list(self.usergroups[group])}

    def _api_users_info(self, params: JSON) -> JSON:
        user = str(params.get("user", ""))
        if user not in self.users:
            raise _ApiError("user_not_found")
        name, is_bot = self.users[user], user == self.bot_user
        info = {"id": user, "team_id": self.team, "name": name, "real_name": name, "is_bot": is_bot}
        return {"user": info | {"deleted": False, "profile": {"real_name": name, "display_name": name}}}


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if path.startswith(UPLOAD_PATH):  # an upload URL from files.getUploadURLExternal
                status, headers, text = fake.receive_upload(path.removeprefix(UPLOAD_PATH), body)
                self._answer(status, headers, text.encode(), "text/plain; charset=utf-8")
                return
            if path.startswith("/response/"):  # a response_url, as Slack hands out with each command
                fake.record_response(path.removeprefix("/response/"), body)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                return
            if not path.startswith("/api/"):
                self.send_error(404)
                return
            content_type, auth = self.headers.get("Content-Type", ""), self.headers.get("Authorization", "")
            status, headers, response = fake.handle(
                path.removeprefix("/api/"), query, content_type, body, auth
            )
            self._answer(status, headers, json.dumps(response).encode(), "application/json; charset=utf-8")

        def _answer(self, status: int, headers: dict[str, str], data: bytes, content_type: str) -> None:
            self.send_response(status)
            headers = headers | {"Content-Type": content_type, "Content-Length": str(len(data))}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST  # Slack accepts GET with query parameters too

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
