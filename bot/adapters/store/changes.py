"""What `/netlog` changes and remembers: mutes, the audit log, and confirmation cards waiting for
Apply (claimed exactly once, so a double click changes nothing twice)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from bot.adapters.store.database import Database, dumps
from bot.adapters.store.tables import audit, mutes, pending_changes
from bot.core.mutes import Mute


class MuteStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, mute: Mute) -> Mute:
        row = {
            "matchers": dumps([list(pair) for pair in mute.matchers]),
            "created_at": mute.created_at,
            "expires_at": mute.expires_at,
            "created_by": mute.created_by,
            "reason": mute.reason,
            "group_key": mute.group_key,
        }
        with self.db.begin() as conn:
            new_id = conn.execute(mutes.insert().values(**row).returning(mutes.c.id)).scalar_one()
        return replace(mute, id=int(new_id))

    def active(self, now: datetime) -> list[Mute]:
        query = (
            sa.select(mutes).where(mutes.c.created_at <= now, mutes.c.expires_at > now).order_by(mutes.c.id)
        )
        with self.db.connect() as conn:
            return [_mute(row) for row in conn.execute(query)]

    def expired_between(self, since: datetime, now: datetime) -> list[Mute]:
        """Mutes whose time ran out in (since, now]: ended early ones too (an unmute sets it)."""
        query = (
            sa.select(mutes).where(mutes.c.expires_at > since, mutes.c.expires_at <= now).order_by(mutes.c.id)
        )
        with self.db.connect() as conn:
            return [_mute(row) for row in conn.execute(query)]

    def end(self, mute_id: int, now: datetime) -> Mute | None:
        """Ends an active mute now; None if there is no such active mute."""
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(mutes).where(mutes.c.id == mute_id, mutes.c.expires_at > now)
            ).first()
            if row is None:
                return None
            conn.execute(mutes.update().where(mutes.c.id == mute_id).values(expires_at=now))
        return replace(_mute(row), expires_at=now)


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, entry: Mapping[str, Any]) -> int:
        with self.db.begin() as conn:
            return int(conn.execute(audit.insert().values(**entry).returning(audit.c.id)).scalar_one())


class PendingChanges:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, change_id: str, user_id: str, command: Mapping[str, Any], now: datetime) -> None:
        row = {
            "id": change_id,
            "user_id": user_id,
            "created_at": now,
            "command": dumps(command),
            "state": "pending",
        }
        with self.db.begin() as conn:
            conn.execute(pending_changes.insert().values(**row))

    def get(self, change_id: str) -> dict[str, Any] | None:
        with self.db.connect() as conn:
            row = conn.execute(
                sa.select(pending_changes.c.command).where(pending_changes.c.id == change_id)
            ).first()
        return orjson.loads(row.command) if row else None

    def claim(
        self, change_id: str, state: str, now: datetime, max_age: timedelta
    ) -> tuple[str, dict[str, Any]]:
        """Moves a pending change to `state` exactly once. Returns (outcome, command), where outcome is
        "claimed", "expired", "unknown", or the state it already had (a second click)."""
        this = pending_changes.c.id == change_id
        with self.db.begin() as conn:
            row = conn.execute(sa.select(pending_changes).where(this)).first()
            if row is None:
                return "unknown", {}
            command = orjson.loads(row.command)
            if row.state != "pending":
                return row.state, command
            if now - row.created_at > max_age:
                conn.execute(pending_changes.update().where(this).values(state="expired"))
                return "expired", command
            claimed = conn.execute(
                pending_changes.update().where(this, pending_changes.c.state == "pending").values(state=state)
            ).rowcount
        return ("claimed" if claimed == 1 else state), command


def _mute(row: Any) -> Mute:
    matchers = tuple((name, pattern) for name, pattern in orjson.loads(row.matchers))
    return Mute(
        int(row.id), matchers, row.created_at, row.expires_at, row.created_by, row.reason, row.group_key
    )
