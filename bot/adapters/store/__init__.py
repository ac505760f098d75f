"""The durable store: SQLAlchemy Core over SQLite (WAL, the embedded default) or PostgreSQL.

Everything the bot must not lose lives here, one module per family of tables sharing one
`Database`: events and rejects (`events`), grouping state and its cursor (`grouping`), the flow
history (`history`), the outbox
and the Slack messages alerts own (`outbox`), mutes, audit and pending changes (`changes`), and
leases (`leases`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bot.adapters.store.changes import AuditLog, MuteStore, PendingChanges
from bot.adapters.store.database import Database
from bot.adapters.store.events import EventStore, IngestResult, Reject, StoredReject
from bot.adapters.store.grouping import HISTORY_START, GroupStateStore
from bot.adapters.store.history import DAILY_OPEN, HistoryStore
from bot.adapters.store.leases import Fence, LeaseHold, LeaseLost, Leases
from bot.adapters.store.migrations import Upgrade, migrate, revisions
from bot.adapters.store.outbox import OutboxItem, OutboxStore
from bot.adapters.store.tables import cursors, events, outbox, rejects, slack_messages

__all__ = [
    "Fence",
    "IngestResult",
    "LeaseHold",
    "LeaseLost",
    "OutboxItem",
    "Reject",
    "Store",
    "StoreUnreadable",
    "StoreUnusable",
    "StoredReject",
]


class StoreUnreadable(Exception):
    """The store cannot answer a reader as it is; `str()` says what to do, in a sentence."""


class StoreUnusable(Exception):
    """NETLOG_DB_URL names no database this bot can use (not a URL, an unsupported database, a
    missing folder, a server that does not answer); `str()` says which, in a sentence."""


def url_problem(url: str) -> str | None:
    """What is wrong with `url` before any connection is tried, in a sentence; None if nothing."""
    try:
        sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return f"NETLOG_DB_URL {url!r} is not a database URL: use sqlite:///PATH or postgresql+psycopg://…"
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and not sqlite_file.parent.is_dir():
        return f"NETLOG_DB_URL names {sqlite_file}, whose folder {sqlite_file.parent} does not exist"
    return None


def shown_url(url: str) -> str:
    """`url` as it may be shown: without its password."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _reason(error: sa.exc.SQLAlchemyError) -> str:
    return str(error.orig if isinstance(error, sa.exc.DBAPIError) else error).splitlines()[0]


def inspect_store(url: str, *, migrate: bool = False) -> tuple[bool, str]:
    """(fine, one line for `netlog-bot check`) about the store at `url`, without creating or
    upgrading anything unless `migrate`. Every failure is a sentence naming NETLOG_DB_URL; a schema
    a newer release wrote raises `migrations.SchemaTooNew`, as a start would."""
    problem = url_problem(url)
    if problem:
        return False, problem
    shown = shown_url(url)
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and not sqlite_file.exists() and not migrate:
        return True, (
            f"{shown} does not exist yet: the bot creates it at its first start "
            "(or run `netlog-bot check --migrate`)"
        )
    try:
        store = Store(url)
    except StoreUnusable as error:
        return False, str(error)
    try:
        if migrate:
            return True, f"{shown} at schema revision {store.migrate()}"
        current, head = revisions(store.db, refuse_newer=True)  # SchemaTooNew: the caller says it
    except StoreUnusable as error:
        return False, str(error)
    except sa.exc.SQLAlchemyError as error:
        return False, f"could not reach the database at NETLOG_DB_URL ({shown}): {_reason(error)}"
    finally:
        store.close()
    if current != head:
        return True, (
            f"{shown} at schema revision {current or 'none'}; this netlog-bot upgrades it to {head} at "
            "its start (or `netlog-bot db upgrade`)"
        )
    return True, f"{shown} at schema revision {current}"


def _sqlite_file(url: str) -> Path | None:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


class Store:
    """One database, its parts by table family, schema upgrades and retention."""

    def __init__(self, url: str, *, scratch: bool = False) -> None:
        """`scratch`: a SQLite file thrown away afterwards, whose commits need not reach the disk.
        Raises `StoreUnusable` for a URL no connection could come of."""
        problem = url_problem(url)
        if problem:
            raise StoreUnusable(problem)
        try:
            self.db = Database(url, scratch=scratch)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError):  # a driver not installed
            raise StoreUnusable(
                f"NETLOG_DB_URL {shown_url(url)}: not a database this bot supports "
                "(sqlite or postgresql+psycopg)"
            ) from None
        self.events = EventStore(self.db)
        self.history = HistoryStore(self.db)
        self.grouping = GroupStateStore(self.db, self.history)
        self.outbox = OutboxStore(self.db)
        self.mutes = MuteStore(self.db)
        self.audit = AuditLog(self.db)
        self.pending = PendingChanges(self.db)
        self.leases = Leases(self.db)

    @property
    def url(self) -> str:
        return self.db.url

    def migrate(self) -> str:
        """Create or upgrade the schema; returns the revision now in place. Safe on every start.
        Raises `migrations.SchemaTooNew` for a database a newer release upgraded, and
        `StoreUnusable` when the database cannot be reached."""
        return self.upgrade().after

    def upgrade(self) -> Upgrade:
        """`migrate`, saying from which revision to which."""
        try:
            return migrate(self.db)
        except sa.exc.OperationalError as error:  # refused, unknown host, bad password, unwritable file
            raise StoreUnusable(
                f"could not reach the database at NETLOG_DB_URL ({shown_url(self.db.url)}): {_reason(error)}"
            ) from None

    def ready_to_read(self) -> None:
        """For commands that only read (they never upgrade a schema a running bot depends on):
        raises `StoreUnreadable` when the database cannot be reached or is not at this code's
        schema revision."""
        try:
            current, head = revisions(self.db)
        except sa.exc.SQLAlchemyError as error:
            raise StoreUnreadable(f"could not read the store at NETLOG_DB_URL ({_reason(error)})") from None
        if current != head:
            raise StoreUnreadable(
                f"the store at NETLOG_DB_URL is at schema revision {current or 'none'}, and this "
                f"netlog-bot reads {head}: run `netlog-bot db upgrade` (every start of the bot does it too)"
            )

    def close(self) -> None:
        self.db.close()

    def purge(
        self, now: datetime, retention: timedelta, history_retention: timedelta | None = None
    ) -> dict[str, int]:
        """Delete what is older than `retention`, and flow history older than `history_retention`
        (kept when None); never events the grouping cursors have not passed."""
        cutoff = now - retention
        with self.db.begin() as conn:
            purged = {}
            if history_retention is not None:
                purged["flow_history"] = self.history.purge(conn, now - history_retention)
            # Every grouping cursor; the history's marks live beside them but are times.
            positions = sa.select(sa.func.min(cursors.c.position)).where(
                cursors.c.name.not_in((HISTORY_START, DAILY_OPEN))
            )
            consumed = conn.execute(positions).scalar() or 0
            return {
                **purged,
                "events": conn.execute(
                    events.delete().where(events.c.timestamp < cutoff, events.c.id <= consumed)
                ).rowcount,
                "rejects": conn.execute(rejects.delete().where(rejects.c.received_at < cutoff)).rowcount,
                "outbox": conn.execute(
                    outbox.delete().where(outbox.c.delivered_at.is_not(None), outbox.c.delivered_at < cutoff)
                ).rowcount,
                "slack_messages": conn.execute(
                    slack_messages.delete().where(slack_messages.c.updated_at < cutoff)
                ).rowcount,
            }
