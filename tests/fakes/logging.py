"""A fake Cloud Logging API: `POST /v2/entries:list`, as the real `google.cloud.logging.Client`
reaches it over HTTP/JSON (`client_options={"api_endpoint": fake.api_url}`, `_use_grpc=False`,
anonymous credentials).

Faithful where our code can tell the difference:
- the request body is `resourceNames, filter, orderBy, pageSize, pageToken`; each is recorded;
  a project other than the fake's is refused (403) as Google refuses an unreadable one;
- entries are filtered by the filter (the subset of the Logging query language the bot writes:
  comparisons `= < <= > >=`, the presence test `:*`, `AND` (or a line break, or nothing), `OR`,
  `NOT`, parentheses; string comparisons ignore case, numbers compare as numbers, `timestamp` as a
  time; a missing field fails every comparison). Anything else is refused (400
  INVALID_ARGUMENT), as Google refuses what it cannot parse. `apply_filter=False` answers every
  entry instead;
- entries are answered in `orderBy` order (`timestamp asc` unless told `timestamp desc`), ties by
  insertId, in pages of `pageSize` (50 when absent, more than 1,000 refused) with an opaque
  `nextPageToken` that only the same query may use; a page with no entries has no `entries` key;
- errors are Google's JSON shape, `{"error": {"code", "message", "status", "details"}}`; 429
  RESOURCE_EXHAUSTED and 403 PERMISSION_DENIED (or any status) can be injected for the next calls.
`hold()` keeps answers back until `release()`, so a test can act while a query is in flight.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.server import LoopbackServer

JSON = dict[str, Any]
PROJECT = "acme"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
STATUSES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
}  # fmt: skip
QUOTA_MESSAGE = (
    "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service "
    "'logging.googleapis.com' for consumer 'project_number:{project}'."
)
DENIED_MESSAGE = "Permission denied for all log views"
_MISSING = object()
_EARLIEST = datetime.min.replace(tzinfo=UTC)


class FilterError(ValueError):
    """A filter outside the fake's grammar, worded as Google words an unparseable filter."""


@dataclass
class ListRequest:
    resource_names: list[str]
    filter: str | None
    order_by: str | None
    page_size: int | None
    page_token: str | None
    status: int = 0  # the answer's HTTP status, once answered
    returned: int = 0  # entries in the answer


@dataclass
class _Fault:
    status: int
    remaining: int


@dataclass(frozen=True)
class _Cursor:
    query: tuple[str | None, str | None, tuple[str, ...]]
    offset: int


def error_body(status: int, message: str, reason: str | None = None) -> JSON:
    """Google's JSON error, with the `ErrorInfo` detail it adds to quota and permission errors."""
    error: JSON = {"code": status, "message": message, "status": STATUSES.get(status, "UNKNOWN")}
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "logging.googleapis.com", "consumer": f"projects/{PROJECT}"},
            }
        ]
    return {"error": error}


class FakeCloudLogging(LoopbackServer):
    def __init__(
        self, entries: Iterable[JSON] = (), *, project: str = PROJECT, apply_filter: bool = True
    ) -> None:
        super().__init__(_handler_for(self))
        self.project = project
        self.apply_filter = apply_filter
        self.entries: list[JSON] = list(entries)
        self.requests: list[ListRequest] = []
        self._faults: list[_Fault] = []
        self._cursors: dict[str, _Cursor] = {}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._gate = threading.Event()
        self._gate.set()

    @property
    def api_url(self) -> str:
        """What `client_options={"api_endpoint": ...}` takes (the client adds `/v2/...`)."""
        return self.root

    def add(self, *entries: JSON) -> None:
        with self._lock:
            self.entries.extend(entries)

    def fail_next(self, status: int, count: int = 1) -> None:
        """The next `count` calls answer `status` with Google's error for it."""
        with self._lock:
            self._faults.append(_Fault(status, count))

    def hold(self) -> None:
        """Keep every answer back (requests are recorded as they arrive) until `release()`."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def stop(self) -> None:
        self.release()  # a held handler would keep its thread (and the client) waiting
        super().stop()

    # -- the server side

    def handle(self, path: str, body: bytes) -> tuple[int, JSON]:
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return 400, error_body(400, "Invalid JSON payload received.")
        if path != "/v2/entries:list" or not isinstance(params, dict):
            return 404, error_body(404, f"The requested URL {path} was not found on this server.")
        request = ListRequest(
            list(params.get("resourceNames") or []),
            params.get("filter"),
            params.get("orderBy"),
            params.get("pageSize"),
            params.get("pageToken"),
        )
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()
        self._gate.wait(timeout=30)
        with self._lock:
            status, answer = self._list(request)
        request.status, request.returned = status, len(answer.get("entries", []))
        return status, answer

    def _list(self, request: ListRequest) -> tuple[int, JSON]:
        fault = next(iter(self._faults), None)
        if fault is not None:
            fault.remaining -= 1
            self._faults = [f for f in self._faults if f.remaining > 0]
            return fault.status, self._fault_body(fault.status)
        if request.resource_names != [f"projects/{self.project}"]:
            return 403, error_body(403, DENIED_MESSAGE, "IAM_PERMISSION_DENIED")
        size = DEFAULT_PAGE_SIZE if request.page_size is None else request.page_size
        if not 0 <= size <= MAX_PAGE_SIZE:
            return 400, error_body(400, f"pageSize must be between 0 and {MAX_PAGE_SIZE}, got {size}")
        size = size or DEFAULT_PAGE_SIZE
        query = (request.filter, request.order_by, tuple(request.resource_names))
        offset = 0
        if request.page_token:
            cursor = self._cursors.get(request.page_token)
            if cursor is None or cursor.query != query:
                return 400, error_body(400, "page_token doesn't match arguments from the request")
            offset = cursor.offset
        try:
            found = self._matching(request.filter, request.order_by)
        except FilterError as error:
            return 400, error_body(400, f"Unparseable filter: {error}")
        answer: JSON = {}
        if found[offset : offset + size]:
            answer["entries"] = found[offset : offset + size]
        if offset + size < len(found):
            token = uuid.uuid4().hex
            self._cursors[token] = _Cursor(query, offset + size)
            answer["nextPageToken"] = token
        return 200, answer

    def _matching(self, query: str | None, order_by: str | None) -> list[JSON]:
        keep = compile_filter(query or "") if self.apply_filter else lambda _: True
        found = [entry for entry in self.entries if keep(entry)]
        descending = (order_by or "").strip().lower() == "timestamp desc"
        if order_by and not descending and order_by.strip().lower() != "timestamp asc":
            raise FilterError(f"invalid orderBy {order_by!r}")
        found.sort(key=lambda e: (_time_of(e.get("timestamp")) or _EARLIEST, str(e.get("insertId"))))
        return found[::-1] if descending else found

    def _fault_body(self, status: int) -> JSON:
        if status == 429:
            return error_body(429, QUOTA_MESSAGE.format(project=self.project), "RATE_LIMIT_EXCEEDED")
        if status == 403:
            return error_body(403, DENIED_MESSAGE, "IAM_PERMISSION_DENIED")
        return error_body(status, "The service is currently unavailable.")


def _handler_for(fake: FakeCloudLogging) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = fake.handle(self.path.partition("?")[0], body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# -- the filter language (the part the bot writes)

Predicate = Callable[[JSON], bool]
_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|!=|=~|!~|[=<>:()])|(?P<word>[^\s"()=<>:!]+))'
)
_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})")


def compile_filter(text: str) -> Predicate:
    """A filter -> a predicate on LogEntry dicts. Raises `FilterError` outside the bot's subset."""
    tokens = _tokens(text)
    if not tokens:
        return lambda _: True
    predicate, rest = _conjunction(tokens)
    if rest:
        raise FilterError(f"unexpected {rest[0][1]!r}")
    return predicate


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    at = 0
    while text[at:].strip():
        match = _TOKEN.match(text, at)
        if match is None or match.lastgroup is None:
            raise FilterError(f"syntax error at character {at}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        at = match.end()
    return tokens


Tokens = Sequence[tuple[str, str]]


def _conjunction(tokens: Tokens) -> tuple[Predicate, Tokens]:
    # OR binds tighter than AND in this language; terms side by side are ANDed.
    parts: list[Predicate] = []
    part, tokens = _disjunction(tokens)
    parts.append(part)
    while tokens and tokens[0] != ("op", ")"):
        if tokens[0] == ("word", "AND"):
            tokens = tokens[1:]
        part, tokens = _disjunction(tokens)
        parts.append(part)
    return (lambda entry: all(p(entry) for p in parts)), tokens


def _disjunction(tokens: Tokens) -> tuple[Predicate, Tokens]:
    parts: list[Predicate] = []
    part, tokens = _unary(tokens)
    parts.append(part)
    while tokens and tokens[0] == ("word", "OR"):
        part, tokens = _unary(tokens[1:])
        parts.append(part)
    return (lambda entry: any(p(entry) for p in parts)), tokens


def _unary(tokens: Tokens) -> tuple[Predicate, Tokens]:
    if not tokens:
        raise FilterError("unexpected end of filter")
    if tokens[0] == ("word", "NOT"):
        inner, rest = _unary(tokens[1:])
        return (lambda entry: not inner(entry)), rest
    if tokens[0] == ("op", "("):
        inner, rest = _conjunction(tokens[1:])
        if not rest or rest[0] != ("op", ")"):
            raise FilterError("unbalanced parentheses")
        return inner, rest[1:]
    return _comparison(tokens)


def _comparison(tokens: Tokens) -> tuple[Predicate, Tokens]:
    if len(tokens) < 3 or tokens[0][0] != "word" or tokens[1][0] != "op" or tokens[2][0] == "op":
        raise FilterError(f"expected a comparison at {' '.join(t for _, t in tokens[:3])!r}")
    field, op, (kind, raw) = tokens[0][1], tokens[1][1], tokens[2]
    value = json.loads(raw) if kind == "string" else raw
    if op == ":":
        if value != "*":
            raise FilterError("the fake knows only the presence test `:*`")
        return (lambda entry: _field(entry, field) not in (_MISSING, None)), tokens[3:]
    if op not in ("=", "<", "<=", ">", ">="):
        raise FilterError(f"the fake does not know the operator {op!r}")
    return (lambda entry: _compare(_field(entry, field), op, value, field)), tokens[3:]


def _field(entry: JSON, path: str) -> Any:
    found: Any = entry
    for part in path.split("."):
        if not isinstance(found, dict) or part not in found:
            return _MISSING
        found = found[part]
    return found


def _compare(actual: Any, op: str, value: str, field: str) -> bool:
    if actual is _MISSING or actual is None:
        return False
    left: Any
    right: Any
    if field == "timestamp":
        left, right = _time_of(actual), _time_of(value)
        if left is None or right is None:
            return False
    elif isinstance(actual, int | float) and not isinstance(actual, bool):
        try:
            left, right = actual, float(value)
        except ValueError:
            return False
    elif isinstance(actual, str):
        left, right = actual.casefold(), value.casefold()
    else:
        return False
    if op == "=":
        return bool(left == right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    return bool(left > right) if op == ">" else bool(left >= right)


def _time_of(value: object) -> datetime | None:
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(f"{match.group(1)}.{fraction}{zone}")
