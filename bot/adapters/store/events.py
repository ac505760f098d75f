"""Events and rejects: what ingest stores. Events are deduplicated on the LogEntry's `insertId`
(Pub/Sub delivers at least once); messages that are not usable entries are kept as rejects."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store.database import Database, Lock, UTCDateTime, dumps
from bot.adapters.store.records import decode_event, encode_event, event_to_record
from bot.adapters.store.tables import events, rejects
from bot.core.events import PolicyEvent

log = logging.getLogger(__name__)

#: Errors that mean "this row is bad" (the database or the JSON encoder refuses it), as opposed to
#: "the database is unreachable", after which the whole batch is nacked and comes back later.
_ROW_REFUSED = (sa.exc.DataError, sa.exc.IntegrityError, TypeError, UnicodeError)

#: Rejected messages keep this much of their body: enough to see what went wrong.
REJECT_RAW_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Reject:
    code: str
    reason: str
    raw: bytes
    message_id: str | None = None
    insert_id: str | None = None
    """Set when the entry parsed but the database refused it."""

    #: The message's name is only its place in a file (`line 3`), which another file shares: the
    #: same reject is then the same bytes.
    named_by_place: bool = False

    @property
    def dedupe_key(self) -> str | None:
        if self.named_by_place:
            return "content:" + hashlib.sha256(self.raw).hexdigest()[:32]
        if self.message_id is not None:
            return f"message:{self.message_id}"
        return f"insertId:{self.insert_id}" if self.insert_id is not None else None


@dataclass(frozen=True, slots=True)
class StoredReject:
    id: int
    received_at: datetime
    code: str
    reason: str
    raw: bytes
    raw_size: int
    message_id: str | None


@dataclass(frozen=True, slots=True)
class IngestResult:
    stored: int
    duplicates: int
    rejected: int


class EventStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, batch: Sequence[PolicyEvent], rejected: Sequence[Reject], received_at: datetime
    ) -> IngestResult:
        """Store a batch in one transaction; events whose insert_id is already stored are skipped."""
        try:
            return self._add(batch, rejected, received_at)
        except _ROW_REFUSED:
            # A row the database (or the encoder) refuses must not sink its batch: nacked, it would
            # come back and fail again forever. Store row by row; refused rows become rejects.
            log.warning("store: a batch of %d was refused; storing it row by row", len(batch))  # even 1
            return self._add_row_by_row(batch, rejected, received_at)

    def _add(
        self, batch: Sequence[PolicyEvent], rejected: Sequence[Reject], received_at: datetime
    ) -> IngestResult:
        unique = list({event.insert_id: event for event in batch}.values())
        with self.db.begin(Lock.INGEST) as conn:
            stored = 0
            if unique:
                event_rows = [_event_row(event) for event in unique]
                stored = (
                    _insert_sqlite(self.db, conn, event_rows, received_at)
                    if self.db.is_sqlite
                    else _copy_pg(conn, event_rows, received_at)
                )
            kept = 0
            if rejected:
                rows = [_reject_row(item, received_at) for item in rejected]
                statement = self.db.insert_ignore(rejects, "dedupe_key").returning(rejects.c.id)
                kept = len(conn.execute(statement, rows).all())
        return IngestResult(stored=stored, duplicates=len(batch) - stored, rejected=kept)

    def _add_row_by_row(
        self, batch: Sequence[PolicyEvent], rejected: Sequence[Reject], received_at: datetime
    ) -> IngestResult:
        stored, refused = 0, list(rejected)
        for event in batch:
            try:
                stored += self._add([event], [], received_at).stored
            except _ROW_REFUSED as error:
                try:
                    raw = dumps(event_to_record(event)).encode()
                except TypeError:  # what the encoder refused: keep a readable form anyway
                    raw = repr(event).encode("utf-8", "backslashreplace")
                reason = f"the database refused the event: {getattr(error, 'orig', None) or error}"
                refused.append(Reject("store_refused", reason, raw, insert_id=event.insert_id))
        kept = self._add([], refused, received_at).rejected
        bad = len(refused) - len(rejected)
        return IngestResult(stored=stored, duplicates=len(batch) - stored - bad, rejected=kept)

    def read(self, after: int, limit: int) -> list[tuple[int, PolicyEvent]]:
        """Events stored after position `after`, oldest first (the grouping cursor's view)."""
        query = (
            sa.select(events.c.id, events.c.record)
            .where(events.c.id > after)
            .order_by(events.c.id)
            .limit(limit)
        )
        with self.db.connect() as conn:
            rows = conn.execute(query)  # unpacked like tuples: cheaper than a Row's attributes
            return [(position, decode_event(record)) for position, record in rows]

    def rejects(
        self, limit: int = 100, *, since: datetime | None = None, code: str | None = None
    ) -> list[StoredReject]:
        """The newest rejects first, received since `since` and of `code` when given."""
        shown = [rejects.c[name] for name in StoredReject.__dataclass_fields__]
        query = sa.select(*shown).order_by(rejects.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(rejects.c.received_at >= since)
        if code is not None:
            query = query.where(rejects.c.code == code)
        with self.db.connect() as conn:
            return [StoredReject(**row._mapping) for row in conn.execute(query)]

    def reject_count(self) -> int:
        with self.db.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(rejects)).scalar_one())

    def hours_with_entries(self, first_hour: int, end_hour: int) -> set[int]:
        """The hours in [first_hour, end_hour) (seconds since the epoch) holding at least one
        stored entry, deny or allow, by its timestamp: one indexed probe per hour."""
        found: set[int] = set()
        with self.db.connect() as conn:
            for hour in range(first_hour, end_hour, 3600):
                start = datetime.fromtimestamp(hour, UTC)
                probe = (
                    sa.select(events.c.id)
                    .where(events.c.timestamp >= start, events.c.timestamp < start + timedelta(hours=1))
                    .limit(1)
                )
                if conn.execute(probe).first() is not None:
                    found.add(hour)
        return found

    def reject_counts(self, start: datetime, end: datetime) -> dict[str, int]:
        """Messages refused in [start, end), by reason code."""
        query = (
            sa.select(rejects.c.code, sa.func.count())
            .where(rejects.c.received_at >= start, rejects.c.received_at < end)
            .group_by(rejects.c.code)
        )
        with self.db.connect() as conn:
            return {code: int(count) for code, count in conn.execute(query)}

    def arrival_delays(self, start: datetime, end: datetime, sample: int = 1_000) -> list[timedelta]:
        """How long the newest `sample` entries logged in [start, end) took to arrive."""
        query = (
            sa.select(events.c.timestamp, events.c.received_at)
            .where(events.c.timestamp >= start, events.c.timestamp < end)
            .order_by(events.c.timestamp.desc())
            .limit(sample)
        )
        with self.db.connect() as conn:
            return [received - logged for logged, received in conn.execute(query)]

    def cluster_activity(self, cluster: str, since: datetime) -> tuple[datetime | None, int]:
        """(timestamp of the newest entry, entries received since `since`) for one cluster."""
        with self.db.connect() as conn:
            newest = conn.execute(
                sa.select(sa.func.max(events.c.timestamp)).where(events.c.cluster == cluster)
            ).scalar()
            recent = conn.execute(
                sa.select(sa.func.count()).where(events.c.cluster == cluster, events.c.received_at >= since)
            ).scalar_one()
        if isinstance(newest, datetime) and newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        return newest, int(recent)


def _insert_sqlite(db: Database, conn: Connection, rows: list[_EventRow], received_at: datetime) -> int:
    """One prepared insert-or-ignore run for every row (`Database.insert_new_rows`), the datetimes
    bound as `UTCDateTime`'s own processor binds them: the same text, and the same refusals."""
    bind = _UTC.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    assert bind is not None  # SQLite stores datetimes as text: there is always a processor
    try:
        received = bind(received_at)  # once: the whole batch arrived together
        params = [
            (insert_id, received, _sqlite_time(timestamp, bind), *rest)
            for insert_id, timestamp, *rest in rows
        ]
    except ValueError as error:  # refused as SQLAlchemy's own type processing would refuse it
        raise sa.exc.StatementError(str(error), "INSERT INTO events", None, error) from error
    return db.insert_new_rows(conn, events, ["insert_id"], _COLUMNS, params)


def _sqlite_time(value: datetime, bind: Callable[[datetime], Any]) -> Any:
    """`bind(value)`, the processor's text, without its string formatting for the UTC datetimes
    every parsed and stored event holds (two microseconds an event, a tenth of storing it)."""
    if value.tzinfo is UTC:
        return value.isoformat(" ", "microseconds")[:-6]  # what the processor writes, less "+00:00"
    return bind(value)


#: The events' columns a batch fills (`id` is the database's). In the staging table `id` holds the
#: row's place in the batch instead, so events get their ids in arrival order.
_COLUMNS = ("insert_id", "received_at", "timestamp", "cluster", "namespace", "disposition", "count", "record")
_STAGING = sa.text(
    # LIKE: the same column types as `events`; per connection, emptied by each commit.
    "CREATE TEMPORARY TABLE IF NOT EXISTS ingest_staging (LIKE events) ON COMMIT DELETE ROWS"
)
_COPY = f"COPY ingest_staging (id, {', '.join(_COLUMNS)}) FROM STDIN"
_FROM_STAGING = sa.text(
    f"INSERT INTO events ({', '.join(_COLUMNS)}) SELECT {', '.join(_COLUMNS)} FROM ingest_staging "
    "ORDER BY id ON CONFLICT (insert_id) DO NOTHING"
)


def _copy_pg(conn: Connection, rows: list[_EventRow], received_at: datetime) -> int:
    """COPY the batch into a staging table, then INSERT … SELECT … ON CONFLICT DO NOTHING.
    A multi-row INSERT of a thousand events costs psycopg more (parsing its own SQL text) than the
    database spends storing them; COPY sends rows without any SQL to parse."""
    try:
        received = _staged(received_at, conn.dialect)
        staged = [
            (place, insert_id, received, _staged(timestamp, conn.dialect), *rest)
            for place, (insert_id, timestamp, *rest) in enumerate(rows)
        ]
    except ValueError as error:  # refused as SQLAlchemy's own type processing would refuse it
        raise sa.exc.StatementError(str(error), _COPY, None, error) from error
    conn.execute(_STAGING)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(_COPY) as copy:
            for row in staged:
                copy.write_row(row)
    except conn.dialect.loaded_dbapi.Error as error:
        # What SQLAlchemy does for the statements it runs: a DataError stays a DataError, so a
        # row the database refuses is recognised as such and the batch is stored row by row.
        raise sa.exc.DBAPIError.instance(
            _COPY, None, error, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from error
    finally:
        cursor.close()
    return int(conn.execute(_FROM_STAGING).rowcount)


def _staged(value: object, dialect: sa.Dialect) -> object:
    """What `UTCDateTime` stores (and refuses), for values COPY sends past SQLAlchemy's types."""
    return _UTC.process_bind_param(value, dialect) if isinstance(value, datetime) else value


_UTC = UTCDateTime()


#: An event's columns but `received_at` (the batch's), in `_COLUMNS` order.
_EventRow = tuple[str, datetime, str | None, str | None, str, int, str]


def _event_row(event: PolicyEvent) -> _EventRow:
    return (
        event.insert_id,
        event.timestamp,
        event.cluster,
        event.namespace,
        event.disposition,
        event.count,
        encode_event(event),
    )


def _reject_row(item: Reject, received_at: datetime) -> dict[str, Any]:
    return {
        "received_at": received_at,
        "message_id": item.message_id,
        "dedupe_key": item.dedupe_key,
        "code": item.code,
        "reason": item.reason[:2000],
        "raw": item.raw[:REJECT_RAW_LIMIT],
        "raw_size": len(item.raw),
    }
