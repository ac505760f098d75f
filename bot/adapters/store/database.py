"""What every part of the store shares: one SQLAlchemy engine, its dialect, and the transaction
helpers. SQLite (WAL, the embedded default) and PostgreSQL behave the same through it."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine


class Lock(enum.IntEnum):
    """PostgreSQL advisory transaction locks (SQLite serialises writers by itself)."""

    #: Ingest transactions commit in id order, so the grouping cursor (`id > position`) can never
    #: step over an event id that commits late.
    INGEST = 0x6E65746C6F67
    #: Two replicas starting at once must not both upgrade the schema.
    MIGRATION = 0x6E65746C6F68
    #: Contenders for a lease take turns reading and writing its row.
    LEASE = 0x6E65746C6F69


class Database:
    def __init__(self, url: str, *, scratch: bool = False) -> None:
        self.url = url
        self.engine: Engine = sa.create_engine(url, future=True)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
            if scratch:
                # A file deleted at exit (replay's): nothing is acked on its commits, so no fsync.
                # It was a tenth of a replay's time.
                sa.event.listen(self.engine, "connect", _no_fsync)

    @contextmanager
    def begin(self, lock: Lock | None = None) -> Iterator[Connection]:
        """One transaction; with `lock`, serialised with every other holder of it on PostgreSQL.
        On SQLite it takes the write lock at once (BEGIN IMMEDIATE, waiting up to busy_timeout):
        a deferred transaction that reads first and then writes fails at once with "database is
        locked" when another writer committed in between, and the busy timeout cannot help it."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_IMMEDIATE: True})
            with conn.begin():
                if lock is not None and not self.is_sqlite:
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(lock)})
                yield conn

    def connect(self) -> Connection:
        return self.engine.connect()

    def insert_ignore(self, table: sa.Table, column: str) -> Any:
        """INSERT … ON CONFLICT (column) DO NOTHING, in this database's dialect."""
        dialect = sqlite if self.is_sqlite else postgresql
        return dialect.insert(table).on_conflict_do_nothing(index_elements=[column])

    @property
    def mark(self) -> str:
        """The driver's parameter marker, for statements handed to it as they are."""
        return "?" if self.engine.dialect.paramstyle == "qmark" else "%s"

    def upsert_rows(
        self, conn: Connection, table: sa.Table, key: Sequence[str], columns: Sequence[str], rows: list[Any]
    ) -> int:
        """INSERT … ON CONFLICT (key) DO UPDATE the other columns, for many tuples in `columns`
        order; returns the rows written."""
        return self._write_rows(conn, table, key, columns, rows, update=True)

    def insert_new_rows(
        self, conn: Connection, table: sa.Table, key: Sequence[str], columns: Sequence[str], rows: list[Any]
    ) -> int:
        """INSERT … ON CONFLICT (key) DO NOTHING, for many tuples in `columns` order; returns the
        rows inserted (the driver sums each run's changes, and a skipped duplicate changes none)."""
        return self._write_rows(conn, table, key, columns, rows, update=False)

    def _write_rows(
        self,
        conn: Connection,
        table: sa.Table,
        key: Sequence[str],
        columns: Sequence[str],
        rows: list[Any],
        *,
        update: bool,
    ) -> int:
        # Handed to the driver's executemany as they are: SQLAlchemy's per-row parameter handling
        # costs more than the database does for the thousands of rows a storm writes per batch.
        # The values must be what the driver takes (the caller binds any SQLAlchemy types).
        mark = self.mark
        quote = self.engine.dialect.identifier_preparer.quote
        names = [quote(name) for name in columns]
        if update:
            updated = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in columns if n not in key)
            action = f"DO UPDATE SET {updated}"
        else:
            action = "DO NOTHING"
        statement = (
            f"INSERT INTO {quote(table.name)} ({', '.join(names)}) VALUES ({', '.join(mark for _ in names)}) "
            f"ON CONFLICT ({', '.join(quote(name) for name in key)}) {action}"
        )
        return int(conn.exec_driver_sql(statement, rows).rowcount)

    def close(self) -> None:
        self.engine.dispose()


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (no time zones) and PostgreSQL."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=OFF")


#: The execution option `Database.begin` sets: its transactions write.
_IMMEDIATE = "netlog_write"


def _sqlite_begin(conn: Connection) -> None:
    """SQLAlchemy's begin, emitted by us (the driver's own implicit BEGIN is off, see below):
    IMMEDIATE for `Database.begin`'s transactions, deferred for reads, which WAL lets run beside
    a writer."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's implicit transactions off: `_sqlite_begin` says how each one begins.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the grouping loop read while ingest writes; busy_timeout waits out the other writer.
    # synchronous=FULL because a commit is what allows the Pub/Sub ack: it must survive power loss.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
