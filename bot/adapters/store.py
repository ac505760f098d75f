"""The durable store: SQLAlchemy Core over SQLite (WAL, the embedded default) or PostgreSQL.

Everything the bot must not lose lives here: ingested events (deduplicated on the LogEntry's
`insertId`, since Pub/Sub delivers at least once), rejected messages for inspection, the grouping
cursor and group state (so a restart continues where it was), and the notification outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from bot.core.events import DenyEvent, event_from_record, event_to_record
from bot.core.mutes import Mute

log = logging.getLogger(__name__)

#: Errors that mean "this row is bad" (the database or the JSON encoder refuses it), as opposed to
#: "the database is unreachable", after which the whole batch is nacked and comes back later.
_ROW_REFUSED = (sa.exc.DataError, sa.exc.IntegrityError, TypeError, UnicodeError)

#: Rejected messages keep this much of their body: enough to see what went wrong.
REJECT_RAW_LIMIT = 4096
#: Serialises ingest transactions on PostgreSQL so event ids commit in order and the grouping
#: cursor (`id > position`) can never step over an id that commits late.
_INGEST_LOCK = 0x6E65746C6F67


LeaseHold = Literal["renewed", "taken"]


@dataclass(frozen=True, slots=True)
class Fence:
    """Writes that only the holder of lease `name` may make carry this; see `Store.commit_grouping`."""

    name: str
    holder: str


class LeaseLost(RuntimeError):
    """A write made only for the lease holder found that this replica no longer holds it."""

    def __init__(self, fence: Fence) -> None:
        super().__init__(f"this replica ({fence.holder}) no longer holds the {fence.name!r} lease")


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


# SQLite autoincrements INTEGER keys only. Tables whose ids are cursors use AUTOINCREMENT there:
# without it SQLite reuses max(id) + 1 after a purge, handing out ids a cursor has already passed.
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
metadata = sa.MetaData()

schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("insert_id", sa.String(255), nullable=False, unique=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("timestamp", UTCDateTime, nullable=False, index=True),
    sa.Column("cluster", sa.Text),
    sa.Column("namespace", sa.Text),
    sa.Column("disposition", sa.String(16), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)


def _rejects_table(meta: sa.MetaData, version: int) -> sa.Table:
    """`rejects` as schema `version` has it (migration 6 added `dedupe_key`)."""
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("received_at", UTCDateTime, nullable=False, index=True),
        sa.Column("message_id", sa.Text),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("raw_size", sa.Integer, nullable=False),
    ]
    if version >= 6:
        # Pub/Sub redelivers a junk message like any other: keep it once. NULL (replayed files
        # have no message ids) never collides.
        columns += [
            sa.Column("dedupe_key", sa.Text),
            sa.Index("ux_rejects_dedupe_key", "dedupe_key", unique=True),
        ]
    return sa.Table("rejects", meta, *columns, sqlite_autoincrement=True)


rejects = _rejects_table(metadata, 6)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

groups = sa.Table(
    "groups",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("record", sa.Text, nullable=False),
)


def _outbox_table(meta: sa.MetaData, version: int) -> sa.Table:
    """The outbox as schema `version` has it: migrations replay history exactly."""
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("group_id", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("delivered_at", UTCDateTime, index=True),
    ]
    if version >= 2:
        columns.append(sa.Column("last_error", sa.Text))
    return sa.Table("outbox", meta, *columns, sqlite_autoincrement=True)


outbox = _outbox_table(metadata, 2)

slack_messages = sa.Table(
    "slack_messages",
    metadata,
    sa.Column("group_id", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("ts", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False, index=True),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)


def _mutes_table(meta: sa.MetaData, version: int) -> sa.Table:
    """`mutes` as schema `version` has it (migration 5 added `group_key`)."""
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    ]
    if version >= 5:
        columns.append(sa.Column("group_key", sa.Text))
    return sa.Table("mutes", meta, *columns, sqlite_autoincrement=True)


mutes = _mutes_table(metadata, 5)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("cluster", sa.Text),
    sa.Column("before", sa.Text),
    sa.Column("after", sa.Text),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)

pending_changes = sa.Table(
    "pending_changes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
)

#: Each migration takes the schema from version N-1 to N. Append; never edit a released one.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, "create events, rejects, cursors, groups, outbox"),
    (2, "slack_messages: the Slack message each alert group owns; outbox.last_error"),
    (3, "leases: one replica at a time runs grouping and delivery"),
    (4, "mutes, audit, pending_changes: for /netlog"),
    (5, "mutes.group_key: mutes from an alert's button cover that alert only"),
    (6, "rejects.dedupe_key: a redelivered junk message is kept once"),
)


@dataclass(frozen=True, slots=True)
class Reject:
    code: str
    reason: str
    raw: bytes
    message_id: str | None = None
    insert_id: str | None = None
    """Set when the entry parsed but the database refused it."""

    @property
    def dedupe_key(self) -> str | None:
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


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    channel: str
    group_id: str
    kind: str
    record: dict[str, Any]


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = sa.create_engine(url, future=True)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def close(self) -> None:
        self.engine.dispose()

    # -- schema ---------------------------------------------------------------------------------

    def migrate(self) -> int:
        """Create or upgrade the schema; returns the version now in place. Safe to call on every start."""
        with self.engine.begin() as conn:
            if not self.is_sqlite:  # two replicas starting at once must not both migrate
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INGEST_LOCK + 1})
            schema_version.create(conn, checkfirst=True)
            current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
            for version, description in MIGRATIONS:
                if version > current:
                    log.info("store: migrating schema to version %d (%s)", version, description)
                    _apply(conn, version)
                    conn.execute(schema_version.insert().values(version=version))
                    current = version
        return current

    # -- ingest ---------------------------------------------------------------------------------

    def ingest(
        self, batch: Sequence[DenyEvent], rejected: Sequence[Reject], received_at: datetime
    ) -> IngestResult:
        """Store a batch in one transaction; events whose insert_id is already stored are skipped."""
        try:
            return self._ingest(batch, rejected, received_at)
        except _ROW_REFUSED:
            # A row the database (or the encoder) refuses must not sink its batch: nacked, it would
            # come back and fail again forever. Store row by row; refused rows become rejects.
            log.warning("store: a batch of %d was refused; storing it row by row", len(batch))  # even 1
            return self._ingest_row_by_row(batch, rejected, received_at)

    def _ingest(
        self, batch: Sequence[DenyEvent], rejected: Sequence[Reject], received_at: datetime
    ) -> IngestResult:
        unique = list({event.insert_id: event for event in batch}.values())
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INGEST_LOCK})
            stored = 0
            if unique:
                rows = [_event_row(event, received_at) for event in unique]
                statement = self._insert_ignore(events, "insert_id").returning(events.c.id)
                stored = len(conn.execute(statement, rows).all())
            kept = 0
            if rejected:
                rows = [_reject_row(item, received_at) for item in rejected]
                statement = self._insert_ignore(rejects, "dedupe_key").returning(rejects.c.id)
                kept = len(conn.execute(statement, rows).all())
        return IngestResult(stored=stored, duplicates=len(batch) - stored, rejected=kept)

    def _ingest_row_by_row(
        self, batch: Sequence[DenyEvent], rejected: Sequence[Reject], received_at: datetime
    ) -> IngestResult:
        stored, refused = 0, list(rejected)
        for event in batch:
            try:
                stored += self._ingest([event], [], received_at).stored
            except _ROW_REFUSED as error:
                try:
                    raw = _dumps(event_to_record(event)).encode()
                except TypeError:  # what the encoder refused: keep a readable form anyway
                    raw = repr(event).encode("utf-8", "backslashreplace")
                reason = f"the database refused the event: {getattr(error, 'orig', None) or error}"
                refused.append(Reject("store_refused", reason, raw, insert_id=event.insert_id))
        kept = self._ingest([], refused, received_at).rejected
        bad = len(refused) - len(rejected)
        return IngestResult(stored=stored, duplicates=len(batch) - stored - bad, rejected=kept)

    def _insert_ignore(self, table: sa.Table, column: str) -> Any:
        dialect = sqlite if self.is_sqlite else postgresql
        return dialect.insert(table).on_conflict_do_nothing(index_elements=[column])

    def read_events(self, after: int, limit: int) -> list[tuple[int, DenyEvent]]:
        """Events stored after position `after`, oldest first (the grouping cursor's view)."""
        query = (
            sa.select(events.c.id, events.c.record)
            .where(events.c.id > after)
            .order_by(events.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(row.id, event_from_record(orjson.loads(row.record))) for row in conn.execute(query)]

    def event_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())

    def total_attempts(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(events.c.count), 0))).scalar_one())

    def insert_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(events.c.insert_id).order_by(events.c.id)).scalars())

    def list_rejects(self, limit: int = 100) -> list[StoredReject]:
        shown = [rejects.c[name] for name in StoredReject.__dataclass_fields__]
        query = sa.select(*shown).order_by(rejects.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [StoredReject(**row._mapping) for row in conn.execute(query)]

    def reject_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(rejects)).scalar_one())

    # -- grouping state ---------------------------------------------------------------------------

    def cursor(self, name: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(cursors.c.position).where(cursors.c.name == name)).scalar()
        return int(value or 0)

    def load_groups(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [orjson.loads(text) for text in conn.execute(sa.select(groups.c.record)).scalars()]

    def commit_grouping(
        self,
        cursor_name: str,
        position: int,
        upserts: Mapping[str, Mapping[str, Any]],
        deletes: Iterable[str],
        notifications: Sequence[Mapping[str, Any]],
        now: datetime,
        fence: Fence | None = None,
    ) -> None:
        """Advance the cursor, save group state and queue notifications: all or nothing.

        With a `fence`, the transaction first proves this replica still holds that lease, so a
        leader that stalled past its lease cannot overwrite its successor's groups and count twice."""
        with self.engine.begin() as conn:
            if fence is not None:
                self._check_fence(conn, fence, now)
            self._set_cursor(conn, cursor_name, position)
            doomed = list(deletes)
            if doomed or upserts:
                conn.execute(groups.delete().where(groups.c.key.in_([*doomed, *upserts])))
            if upserts:
                conn.execute(groups.insert(), [{"key": k, "record": _dumps(v)} for k, v in upserts.items()])
            if notifications:
                conn.execute(outbox.insert(), [_outbox_row(n, now) for n in notifications])

    def _set_cursor(self, conn: Connection, name: str, position: int) -> None:
        updated = conn.execute(cursors.update().where(cursors.c.name == name).values(position=position))
        if updated.rowcount == 0:
            conn.execute(cursors.insert().values(name=name, position=position))

    # -- outbox -----------------------------------------------------------------------------------

    def pending_outbox(self, limit: int = 500) -> list[OutboxItem]:
        query = sa.select(outbox).where(outbox.c.delivered_at.is_(None)).order_by(outbox.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [
                OutboxItem(row.id, row.channel, row.group_id, row.kind, orjson.loads(row.record))
                for row in conn.execute(query)
            ]

    def pending_by_channel(self, per_channel: int = 100) -> dict[str, list[OutboxItem]]:
        """The oldest pending rows of every channel: a channel that cannot be delivered to (and so
        piles up rows) never hides the others' rows."""
        pending = outbox.c.delivered_at.is_(None)
        with self.engine.connect() as conn:
            channels = list(conn.execute(sa.select(outbox.c.channel).where(pending).distinct()).scalars())
            by_channel = {}
            for channel in sorted(channels):
                query = sa.select(outbox).where(pending, outbox.c.channel == channel).order_by(outbox.c.id)
                rows = conn.execute(query.limit(per_channel))
                by_channel[channel] = [
                    OutboxItem(row.id, row.channel, row.group_id, row.kind, orjson.loads(row.record))
                    for row in rows
                ]
        return by_channel

    def mark_delivered(self, ids: Sequence[int], now: datetime) -> None:
        if ids:
            with self.engine.begin() as conn:
                conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(delivered_at=now))

    def outbox_backlog(self) -> int:
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.delivered_at.is_(None))
            return int(conn.execute(query).scalar_one())

    def note_outbox_error(self, ids: Sequence[int], error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(last_error=error[:2000]))

    def complete_delivery(
        self,
        ids: Sequence[int],
        now: datetime,
        *,
        message: tuple[str, str, str] | None = None,
        follow_up: Mapping[str, Any] | None = None,
        fence: Fence | None = None,
    ) -> None:
        """After a Slack call succeeded: mark `ids` delivered, remember the group's message
        (group_id, channel, ts) and queue a follow-up (a thread reply), all or nothing.

        With a `fence`, a replica that lost the lease during the call records nothing: its
        successor owns the group's message now, and must not have it swapped for a duplicate."""
        with self.engine.begin() as conn:
            if fence is not None:
                self._check_fence(conn, fence, now)
            conn.execute(
                outbox.update()
                .where(outbox.c.id.in_(ids), outbox.c.delivered_at.is_(None))
                .values(delivered_at=now, last_error=None)
            )
            if message is not None:
                group_id, channel, ts = message
                conn.execute(slack_messages.delete().where(slack_messages.c.group_id == group_id))
                conn.execute(
                    slack_messages.insert().values(group_id=group_id, channel=channel, ts=ts, updated_at=now)
                )
            if follow_up is not None:
                conn.execute(outbox.insert().values(**_outbox_row(follow_up, now)))

    def message_for(self, group_id: str) -> tuple[str, str] | None:
        """(channel ID, ts) of the Slack message a group owns, if it was posted."""
        query = sa.select(slack_messages.c.channel, slack_messages.c.ts).where(
            slack_messages.c.group_id == group_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (row.channel, row.ts) if row else None

    # -- mutes, audit, confirmations -----------------------------------------------------------------

    def add_mute(self, mute: Mute) -> Mute:
        row = {
            "matchers": _dumps([list(pair) for pair in mute.matchers]),
            "created_at": mute.created_at,
            "expires_at": mute.expires_at,
            "created_by": mute.created_by,
            "reason": mute.reason,
            "group_key": mute.group_key,
        }
        with self.engine.begin() as conn:
            new_id = conn.execute(mutes.insert().values(**row).returning(mutes.c.id)).scalar_one()
        return replace(mute, id=int(new_id))

    def active_mutes(self, now: datetime) -> list[Mute]:
        query = (
            sa.select(mutes).where(mutes.c.created_at <= now, mutes.c.expires_at > now).order_by(mutes.c.id)
        )
        with self.engine.connect() as conn:
            return [_mute(row) for row in conn.execute(query)]

    def end_mute(self, mute_id: int, now: datetime) -> Mute | None:
        """Ends an active mute now; None if there is no such active mute."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(mutes).where(mutes.c.id == mute_id, mutes.c.expires_at > now)
            ).first()
            if row is None:
                return None
            conn.execute(mutes.update().where(mutes.c.id == mute_id).values(expires_at=now))
        return replace(_mute(row), expires_at=now)

    def add_audit(self, entry: Mapping[str, Any]) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(audit.insert().values(**entry).returning(audit.c.id)).scalar_one())

    def list_audit(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(audit).order_by(audit.c.id.desc()).limit(limit))
            return [dict(row._mapping) for row in rows]

    def add_pending(self, change_id: str, user_id: str, command: Mapping[str, Any], now: datetime) -> None:
        row = {
            "id": change_id,
            "user_id": user_id,
            "created_at": now,
            "command": _dumps(command),
            "state": "pending",
        }
        with self.engine.begin() as conn:
            conn.execute(pending_changes.insert().values(**row))

    def get_pending(self, change_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(pending_changes.c.command).where(pending_changes.c.id == change_id)
            ).first()
        return orjson.loads(row.command) if row else None

    def enqueue(self, record: Mapping[str, Any], now: datetime) -> None:
        """Queue a message (an audit line) for delivery, like grouping queues its notifications."""
        with self.engine.begin() as conn:
            conn.execute(outbox.insert().values(**_outbox_row(record, now)))

    def claim_pending(
        self, change_id: str, state: str, now: datetime, max_age: timedelta
    ) -> tuple[str, dict[str, Any]]:
        """Moves a pending change to `state` exactly once. Returns (outcome, command), where outcome is
        "claimed", "expired", "unknown", or the state it already had (a second click)."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(pending_changes).where(pending_changes.c.id == change_id)).first()
            if row is None:
                return "unknown", {}
            command = orjson.loads(row.command)
            if row.state != "pending":
                return row.state, command
            if now - row.created_at > max_age:
                conn.execute(
                    pending_changes.update().where(pending_changes.c.id == change_id).values(state="expired")
                )
                return "expired", command
            claimed = conn.execute(
                pending_changes.update()
                .where(pending_changes.c.id == change_id, pending_changes.c.state == "pending")
                .values(state=state)
            ).rowcount
        return ("claimed" if claimed == 1 else state), command

    # -- status -------------------------------------------------------------------------------------

    def cluster_activity(self, cluster: str, since: datetime) -> tuple[datetime | None, int]:
        """(timestamp of the newest entry, entries received since `since`) for one cluster."""
        with self.engine.connect() as conn:
            newest = conn.execute(
                sa.select(sa.func.max(events.c.timestamp)).where(events.c.cluster == cluster)
            ).scalar()
            recent = conn.execute(
                sa.select(sa.func.count()).where(events.c.cluster == cluster, events.c.received_at >= since)
            ).scalar_one()
        if isinstance(newest, datetime) and newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        return newest, int(recent)

    # -- leases ---------------------------------------------------------------------------------

    def hold_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> LeaseHold | None:
        """Take or renew `name` for `holder` until now + ttl, unless someone else holds it.

        "renewed" means `holder` held it without a break; "taken" means it was free or expired, so
        someone else may have held it meanwhile and whatever `holder` kept in memory is stale."""
        with self.engine.begin() as conn:
            if not self.is_sqlite:  # serialise contenders; SQLite writers are serialised already
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INGEST_LOCK + 2})
            row = conn.execute(sa.select(leases).where(leases.c.name == name)).first()
            if row is not None and row.holder != holder and row.expires_at > now:
                return None
            renewed = row is not None and row.holder == holder and row.expires_at > now
            conn.execute(leases.delete().where(leases.c.name == name))
            conn.execute(leases.insert().values(name=name, holder=holder, expires_at=now + ttl))
        return "renewed" if renewed else "taken"

    def holds_lease(self, fence: Fence, now: datetime) -> bool:
        query = sa.select(leases.c.holder).where(
            leases.c.name == fence.name, leases.c.holder == fence.holder, leases.c.expires_at > now
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    @staticmethod
    def _check_fence(conn: Connection, fence: Fence, now: datetime) -> None:
        # A write, not a read: it takes the lease row's lock (PostgreSQL) or the database's write
        # lock (SQLite) until commit, so a successor's takeover waits for this transaction to end.
        touched = conn.execute(
            leases.update()
            .where(leases.c.name == fence.name, leases.c.holder == fence.holder, leases.c.expires_at > now)
            .values(holder=fence.holder)
        )
        if touched.rowcount != 1:
            raise LeaseLost(fence)

    def release_lease(self, name: str, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))

    # -- retention --------------------------------------------------------------------------------

    def purge(self, now: datetime, retention: timedelta) -> dict[str, int]:
        """Delete what is older than `retention`; never events the grouping cursors have not passed."""
        cutoff = now - retention
        with self.engine.begin() as conn:
            consumed = conn.execute(sa.select(sa.func.min(cursors.c.position))).scalar() or 0
            return {
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


def _apply(conn: Connection, version: int) -> None:
    if version == 1:
        for table in (events, _rejects_table(sa.MetaData(), 1), cursors, groups):
            table.create(conn, checkfirst=True)
        _outbox_table(sa.MetaData(), 1).create(conn, checkfirst=True)
    elif version == 2:
        slack_messages.create(conn, checkfirst=True)
        conn.execute(sa.text("ALTER TABLE outbox ADD COLUMN last_error TEXT"))
    elif version == 3:
        leases.create(conn, checkfirst=True)
    elif version == 4:
        for table in (_mutes_table(sa.MetaData(), 4), audit, pending_changes):
            table.create(conn, checkfirst=True)
    elif version == 5:
        conn.execute(sa.text("ALTER TABLE mutes ADD COLUMN group_key TEXT"))
    elif version == 6:
        conn.execute(sa.text("ALTER TABLE rejects ADD COLUMN dedupe_key TEXT"))
        conn.execute(sa.text("CREATE UNIQUE INDEX ux_rejects_dedupe_key ON rejects (dedupe_key)"))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the grouping loop read while ingest writes; busy_timeout waits out the other writer.
    # synchronous=FULL because a commit is what allows the Pub/Sub ack: it must survive power loss.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _event_row(event: DenyEvent, received_at: datetime) -> dict[str, Any]:
    return {
        "insert_id": event.insert_id,
        "received_at": received_at,
        "timestamp": event.timestamp,
        "cluster": event.cluster,
        "namespace": event.namespace,
        "disposition": event.disposition,
        "count": event.count,
        "record": _dumps(event_to_record(event)),
    }


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


def _outbox_row(record: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "created_at": now,
        "channel": record["channel"],
        "group_id": record["group_id"],
        "kind": record["kind"],
        "record": _dumps(record),
    }


def _mute(row: Any) -> Mute:
    matchers = tuple((name, pattern) for name, pattern in orjson.loads(row.matchers))
    return Mute(
        int(row.id), matchers, row.created_at, row.expires_at, row.created_by, row.reason, row.group_key
    )
