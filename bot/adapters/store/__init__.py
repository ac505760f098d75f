"""The durable store: SQLAlchemy Core over SQLite (WAL, the embedded default) or PostgreSQL.

Everything the bot must not lose lives here, one module per family of tables sharing one
`Database`: events and rejects (`events`), grouping state and its cursor (`grouping`), the flow
history (`history`), the outbox
and the Slack messages alerts own (`outbox`), mutes, audit and pending changes (`changes`), and
leases (`leases`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from bot.adapters.store.changes import AuditLog, MuteStore, PendingChanges
from bot.adapters.store.database import Database
from bot.adapters.store.events import EventStore, IngestResult, Reject, StoredReject
from bot.adapters.store.grouping import GroupStateStore
from bot.adapters.store.history import HistoryStore
from bot.adapters.store.leases import Fence, LeaseHold, LeaseLost, Leases
from bot.adapters.store.migrations import migrate
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
    "StoredReject",
]


class Store:
    """One database, its parts by table family, schema upgrades and retention."""

    def __init__(self, url: str, *, scratch: bool = False) -> None:
        """`scratch`: a SQLite file thrown away afterwards, whose commits need not reach the disk."""
        self.db = Database(url, scratch=scratch)
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
        Raises `migrations.SchemaTooNew` for a database a newer release upgraded."""
        return migrate(self.db).after

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
            consumed = conn.execute(sa.select(sa.func.min(cursors.c.position))).scalar() or 0
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
