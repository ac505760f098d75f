"""Leases: one replica at a time holds a named lease (the alerts lease: grouping and delivery).
A holder that stops renewing loses it after its TTL; writes only the holder may make are fenced."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store.database import Database, Lock
from bot.adapters.store.tables import leases

LeaseHold = Literal["renewed", "taken"]


@dataclass(frozen=True, slots=True)
class Fence:
    """Writes that only the holder of lease `name` may make carry this (see `check_fence`)."""

    name: str
    holder: str


class LeaseLost(RuntimeError):
    """A write made only for the lease holder found that this replica no longer holds it."""

    def __init__(self, fence: Fence) -> None:
        super().__init__(f"this replica ({fence.holder}) no longer holds the {fence.name!r} lease")
        self.fence = fence


class Leases:
    def __init__(self, db: Database) -> None:
        self.db = db

    def hold(self, name: str, holder: str, now: datetime, ttl: timedelta) -> LeaseHold | None:
        """Take or renew `name` for `holder` until now + ttl, unless someone else holds it.

        "renewed" means `holder` held it without a break; "taken" means it was free or expired, so
        someone else may have held it meanwhile and whatever `holder` kept in memory is stale."""
        with self.db.begin(Lock.LEASE) as conn:
            row = conn.execute(sa.select(leases).where(leases.c.name == name)).first()
            if row is not None and row.holder != holder and row.expires_at > now:
                return None
            renewed = row is not None and row.holder == holder and row.expires_at > now
            conn.execute(leases.delete().where(leases.c.name == name))
            conn.execute(leases.insert().values(name=name, holder=holder, expires_at=now + ttl))
        return "renewed" if renewed else "taken"

    def holds(self, fence: Fence, now: datetime) -> bool:
        query = sa.select(leases.c.holder).where(
            leases.c.name == fence.name, leases.c.holder == fence.holder, leases.c.expires_at > now
        )
        with self.db.connect() as conn:
            return conn.execute(query).first() is not None

    def release(self, name: str, holder: str) -> None:
        with self.db.begin() as conn:
            conn.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))


def check_fence(conn: Connection, fence: Fence | None, now: datetime) -> None:
    """Inside a write transaction: raise `LeaseLost` unless `fence` still holds its lease.

    A write, not a read: it takes the lease row's lock (PostgreSQL) or the database's write lock
    (SQLite) until commit, so a successor's takeover waits for this transaction to end."""
    if fence is None:
        return
    touched = conn.execute(
        leases.update()
        .where(leases.c.name == fence.name, leases.c.holder == fence.holder, leases.c.expires_at > now)
        .values(holder=fence.holder)
    )
    if touched.rowcount != 1:
        raise LeaseLost(fence)
