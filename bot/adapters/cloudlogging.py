"""Cloud Logging as a source for `recent` and `top`: the denies of a window the bot's own history
does not reach back to, read with `entries.list` and rolled up as the history is.

The read quota shapes this module: about 60 `entries.list` calls a minute per project, shared with
everyone reading the project's logs (Logs Explorer included), and answered with 429 when spent.
So an answer reads at most `cap` entries, the newest (entries come newest first), in pages of
`page_size` (the API's largest); the same question within `cache_for` seconds is answered from
memory; each person has at most one query running; and a 429 is said, not retried (a retry spends
the quota that is missing).

The filter sent is a superset (`logquery.history_filter`): what comes back is parsed, rolled up and
narrowed exactly in memory, by the same functions that answer from the history.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import google.auth.credentials
import google.auth.exceptions
from google.api_core import exceptions as google_errors

from bot.core.events import EntryParser, NetworkNames, RejectedEntry
from bot.core.history import Cell, CellKey, FlowFilter, FlowNode, Window, flow_nodes, roll_up
from bot.core.logquery import history_filter

if TYPE_CHECKING:
    # google-cloud-logging ships py.typed over an untyped API; and once mypy reads it, `google.cloud`
    # is a package mypy knows, so `from google.cloud import pubsub_v1` (no py.typed) elsewhere
    # becomes an error instead of an ignored missing import. Typed as what it is to us: Any.
    cloud_logging: Any
else:
    from google.cloud import logging as cloud_logging

log = logging.getLogger(__name__)

#: The API's own host, named in sentences when no other endpoint is set.
_DEFAULT_ENDPOINT = "logging.googleapis.com"
#: The longest part of an API error message repeated to a person.
_MESSAGE_CHARS = 200
_REST_PREFIX = re.compile(r"^[A-Z]+ \S+: ")

ALREADY_RUNNING = "You already have a Cloud Logging query running; wait for its answer."
RATE_LIMITED = "Cloud Logging is busy (about 60 queries a minute per project); try again in a minute."


class LoggingError(Exception):
    """Cloud Logging could not answer; `str()` is a sentence a person can act on."""


@dataclass(frozen=True, slots=True)
class LoggingAnswer:
    #: The flows the exact filter keeps, as `HistoryStore.flow_nodes` returns them.
    rows: list[FlowNode]
    #: Entries read from Cloud Logging (at most `cap`), before the exact filter.
    entries: int
    #: Cloud Logging held more than `cap` entries (or sent one the client could not read): the
    #: rows count the newest only.
    truncated: bool
    #: Entries read that are not usable policy-action denies.
    rejected: int
    #: The filter sent (the cached one's, when answered from memory).
    query: str


@dataclass(frozen=True, slots=True)
class _Read:
    """What one query read, before the exact filter: what the cache keeps."""

    cells: dict[CellKey, Cell]
    entries: int
    truncated: bool
    rejected: int


class CloudLoggingSource:
    """Answers `flow_nodes` from Cloud Logging. Connects on the first query, not before."""

    def __init__(
        self,
        project: str,
        networks: NetworkNames,
        api_url: str | None = None,
        *,
        cap: int = 5000,
        page_size: int = 1000,
        cache_for: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.project = project
        self._networks = networks
        self._api_url = api_url
        self._cap = cap
        self._page_size = page_size
        self._cache_for = cache_for
        self._clock = clock
        self._client: Any = None
        # Apart from `_lock`: making the client looks credentials up (on GKE, the metadata
        # server), which must not hold up answers from the cache.
        self._client_lock = threading.Lock()
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, _Read]] = {}
        self._running: set[str] = set()

    def flow_nodes(self, user: str, flow_filter: FlowFilter, window: Window) -> LoggingAnswer:
        """The flows through each node in `window` that `flow_filter` matches. Raises `LoggingError`."""
        query = history_filter(self.project, flow_filter, window.start, _minute_from(window.end))
        read = self._cached(query)
        if read is None:
            with self._one_query(user):
                read = self._read(query)
            self._remember(query, read)
        rows = flow_nodes(read.cells, flow_filter, window)
        return LoggingAnswer(rows, read.entries, read.truncated, read.rejected, query)

    # -- rate limits

    def _cached(self, query: str) -> _Read | None:
        with self._lock:
            now = self._clock()
            for stale in [q for q, (at, _) in self._cache.items() if now - at >= self._cache_for]:
                del self._cache[stale]
            found = self._cache.get(query)
        return found[1] if found else None

    def _remember(self, query: str, read: _Read) -> None:
        if self._cache_for > 0:
            with self._lock:
                self._cache[query] = (self._clock(), read)

    @contextmanager
    def _one_query(self, user: str) -> Iterator[None]:
        # A second query from one person is a double click or impatience, and each costs up to
        # cap/page_size + 1 calls of a quota shared by everyone.
        with self._lock:
            if user in self._running:
                raise LoggingError(ALREADY_RUNNING)
            self._running.add(user)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(user)

    # -- the API

    def _read(self, query: str) -> _Read:
        with worded_errors(self.project, self._endpoint):
            return self._read_entries(query)

    def probe(self, since: datetime) -> int:
        """For `netlog-bot check`: one `entries.list` of one policy-action entry logged since
        `since` (the whole project's deny and allow log, unnarrowed). Returns how many came back, 0
        or 1; raises `LoggingError` with what to fix when the project cannot be read."""
        log_name = f"projects/{self.project}/logs/policy-action"
        query = f'logName="{log_name}"\ntimestamp>="{since.strftime("%Y-%m-%dT%H:%M:%SZ")}"'
        with worded_errors(self.project, self._endpoint):
            found = self._logging().list_entries(
                resource_names=[f"projects/{self.project}"],
                filter_=query,
                order_by=cloud_logging.DESCENDING,
                page_size=1,
                max_results=1,
            )
            return sum(1 for _ in found)

    def _read_entries(self, query: str) -> _Read:
        parser = EntryParser(self._networks)
        events = []
        read = rejected = 0
        truncated = False
        for entry in self._entries(query):
            if entry is None or read == self._cap:  # unreadable, or one past the cap
                rejected += 1 if entry is None else 0
                truncated = True
                break
            read += 1
            try:
                events.append(parser.entry(entry))
            except RejectedEntry:
                rejected += 1
        return _Read(roll_up(events), read, truncated, rejected)

    def _entries(self, query: str) -> Iterator[dict[str, Any] | None]:
        """The entries as the API sends them (camelCase dicts), newest first, one past the cap."""
        found = iter(
            self._logging().list_entries(
                resource_names=[f"projects/{self.project}"],
                filter_=query,
                order_by=cloud_logging.DESCENDING,
                page_size=self._page_size,
                max_results=self._cap + 1,
            )
        )
        while True:
            try:
                entry = next(found)
            except StopIteration:
                return
            except (KeyError, ValueError, TypeError) as error:
                if isinstance(error, OSError):  # requests' JSON errors are both: a failed request
                    raise
                # The client builds an object from each entry before we see it, and gives up on one
                # without a logName or with a timestamp it cannot read, losing the rest of the
                # answer with it: None says so, and what was read stands.
                log.warning("Cloud Logging sent an entry its client cannot read: %r", error)
                yield None
                return
            yield entry.to_api_repr()

    def _logging(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = logging_client(self.project, self._api_url)
            return self._client

    @property
    def _endpoint(self) -> str:
        return self._api_url or _DEFAULT_ENDPOINT


def logging_client(project: str, api_url: str | None = None) -> Any:
    """The real `google.cloud.logging.Client`: default credentials, or none for a stand-in server at
    `api_url` (tests, a local proxy). Creating it looks credentials up, hence only on first use."""
    # HTTP/JSON in production too, so the transport the tests drive (against the fake server) is
    # the one that runs; a few pages per answer gain nothing from gRPC.
    options: dict[str, Any] = {"project": project, "_use_grpc": False}
    if api_url:
        anonymous = google.auth.credentials.AnonymousCredentials()  # type: ignore[no-untyped-call]
        options |= {"credentials": anonymous, "client_options": {"api_endpoint": api_url}}
    return cloud_logging.Client(**options)


def _api_message(error: google_errors.GoogleAPICallError) -> str:
    """Google's own words, without the `POST <url>: ` the HTTP transport puts before them."""
    message = _REST_PREFIX.sub("", " ".join(str(error.message or "").split()))
    return message[:_MESSAGE_CHARS].rstrip(".")


@contextmanager
def worded_errors(project: str, endpoint: str) -> Iterator[None]:
    """Cloud Logging's failures, as `LoggingError` sentences a person can act on."""
    try:
        yield
    except google_errors.TooManyRequests as error:  # 429, RESOURCE_EXHAUSTED over gRPC too
        raise LoggingError(RATE_LIMITED) from error
    except google_errors.Forbidden as error:  # 403, PERMISSION_DENIED
        raise LoggingError(
            f"The bot may not read Cloud Logging in project {project}: give its Google "
            "service account roles/logging.viewer on that project."
        ) from error
    except (
        google_errors.Unauthorized,
        google.auth.exceptions.DefaultCredentialsError,
        google.auth.exceptions.RefreshError,
    ) as error:
        raise LoggingError(
            f"The bot has no Google credentials Cloud Logging accepts for project {project}: "
            "run it with Workload Identity or set GOOGLE_APPLICATION_CREDENTIALS to a key file."
        ) from error
    except google_errors.GoogleAPICallError as error:
        raise LoggingError(
            f"Cloud Logging could not answer ({error.code}: {_api_message(error)}); try again in "
            "a minute, or open Logs Explorer."
        ) from error
    except (google_errors.GoogleAPIError, google.auth.exceptions.GoogleAuthError, OSError) as error:
        # OSError covers requests' connection errors and timeouts. The detail is for operators.
        log.warning("Cloud Logging at %s failed: %s", endpoint, error)
        raise LoggingError(
            f"Cloud Logging could not be reached at {endpoint}; try again in a minute."
        ) from error


def _minute_from(moment: datetime) -> datetime:
    """`moment`, rounded up to a whole minute: the same question asked within a minute is then the
    same filter text, which the cache knows it by. Nothing is logged after the moment asked yet."""
    whole = moment.replace(second=0, microsecond=0)
    return whole if whole == moment else whole + timedelta(minutes=1)
