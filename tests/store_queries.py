"""Read-only questions only tests ask of the store (the bot itself never needs them)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bot.adapters.store import Store
from bot.adapters.store.tables import audit, events


def event_count(store: Store) -> int:
    with store.db.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())


def total_attempts(store: Store) -> int:
    with store.db.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(events.c.count), 0))).scalar_one())


def insert_ids(store: Store) -> list[str]:
    with store.db.connect() as conn:
        return list(conn.execute(sa.select(events.c.insert_id).order_by(events.c.id)).scalars())


def list_audit(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first."""
    with store.db.connect() as conn:
        rows = conn.execute(sa.select(audit).order_by(audit.c.id.desc()).limit(limit))
        return [dict(row._mapping) for row in rows]
