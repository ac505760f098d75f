"""The outbox: Slack messages waiting to be sent (a row leaves only once Slack accepted it), and
the Slack message each alert group owns, so later notifications edit it in place."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.adapters.store.database import Database
from bot.adapters.store.leases import Fence, check_fence
from bot.adapters.store.records import decode_message, encode_message
from bot.adapters.store.tables import digests, outbox, slack_messages
from bot.core.grouping import Notification, group_id_prefix
from bot.core.history import hour_of
from bot.core.outbox import AlertEdit, AlertPost, DigestPost, OutboxMessage


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A queued message and its row id (what `complete` and `mark_delivered` take)."""

    id: int
    message: OutboxMessage

    @property
    def channel(self) -> str:
        return self.message.channel

    @property
    def group_id(self) -> str:
        return self.message.group_id

    @property
    def kind(self) -> str:
        return self.message.kind


class OutboxStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(self, message: OutboxMessage, now: datetime) -> None:
        """Queue a message (an audit line) for delivery, like grouping queues its notifications."""
        with self.db.begin() as conn:
            conn.execute(outbox.insert().values(**outbox_row(message, now)))

    def pending(self, limit: int = 500) -> list[OutboxItem]:
        """The oldest undelivered rows of all channels (the demo prints them instead of sending)."""
        query = sa.select(outbox).where(outbox.c.delivered_at.is_(None)).order_by(outbox.c.id).limit(limit)
        with self.db.connect() as conn:
            return [_item(row) for row in conn.execute(query)]

    def pending_by_channel(self, per_channel: int = 100) -> dict[str, list[OutboxItem]]:
        """The oldest pending rows of every channel: a channel that cannot be delivered to (and so
        piles up rows) never hides the others' rows."""
        pending = outbox.c.delivered_at.is_(None)
        with self.db.connect() as conn:
            channels = list(conn.execute(sa.select(outbox.c.channel).where(pending).distinct()).scalars())
            by_channel = {}
            for channel in sorted(channels):
                query = sa.select(outbox).where(pending, outbox.c.channel == channel).order_by(outbox.c.id)
                by_channel[channel] = [_item(row) for row in conn.execute(query.limit(per_channel))]
        return by_channel

    def mark_delivered(self, ids: Sequence[int], now: datetime) -> None:
        if ids:
            with self.db.begin() as conn:
                conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(delivered_at=now))

    def backlog(self) -> int:
        with self.db.connect() as conn:
            query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.delivered_at.is_(None))
            return int(conn.execute(query).scalar_one())

    def backlog_since(self) -> tuple[int, datetime | None]:
        """Undelivered messages and when the oldest of them was queued (None when there is none)."""
        oldest = sa.func.min(outbox.c.created_at, type_=outbox.c.created_at.type)
        query = sa.select(sa.func.count(), oldest).where(outbox.c.delivered_at.is_(None))
        with self.db.connect() as conn:
            count, since = conn.execute(query).one()
        return int(count), since

    def note_error(self, ids: Sequence[int], error: str) -> None:
        with self.db.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(last_error=error[:2000]))

    def complete(
        self,
        ids: Sequence[int],
        now: datetime,
        *,
        message: tuple[str, str, str] | None = None,
        follow_up: OutboxMessage | Iterable[OutboxMessage | None] | None = None,
        fence: Fence | None = None,
    ) -> None:
        """After a Slack call succeeded: mark `ids` delivered, remember the group's message
        (group_id, channel, ts) and queue follow-ups (a thread reply, a digest's chart, an older
        message to mark superseded; None where there is none), all or nothing.

        With a `fence`, a replica that lost the lease during the call records nothing: its
        successor owns the group's message now, and must not have it swapped for a duplicate."""
        with self.db.begin() as conn:
            check_fence(conn, fence, now)
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
            for queued in _messages(follow_up):
                conn.execute(outbox.insert().values(**outbox_row(queued, now)))

    def queue_digest(self, post: DigestPost, now: datetime, fence: Fence | None = None) -> bool:
        """Queue a channel's digest unless that channel's digest of that period was queued before:
        the record and the message in one transaction, so two replicas (or a restart) never send
        it twice. Returns whether it was queued now."""
        period = post.digest.period
        record = {
            "channel": post.channel,
            "period_start": hour_of(period.start),
            "period_end": hour_of(period.end),
            "queued_at": now,
            "late": post.digest.late,
        }
        dialect = self.db.engine.dialect.name
        insert = postgresql.insert(digests) if dialect == "postgresql" else sqlite.insert(digests)
        with self.db.begin() as conn:
            check_fence(conn, fence, now)
            # RETURNING, not rowcount: psycopg reports -1 for a statement with ON CONFLICT here.
            statement = insert.values(**record).on_conflict_do_nothing().returning(digests.c.channel)
            if conn.execute(statement).first() is None:
                return False
            conn.execute(outbox.insert().values(**outbox_row(post, now)))
        return True

    def digest_queued(self, channel: str, start: datetime) -> bool:
        query = sa.select(digests.c.channel).where(
            digests.c.channel == channel, digests.c.period_start == hour_of(start)
        )
        with self.db.connect() as conn:
            return conn.execute(query).first() is not None

    def alert_counts(self, start: datetime, end: datetime) -> dict[str, tuple[int, int]]:
        """(alert groups opened, resolved) per channel, by the notifications queued in [start, end).
        Rows are kept until the retention purge, delivered or not."""
        # Edits are most of an alert's rows (one per update): only those that resolve are decoded,
        # found by their text first (the codec writes `"kind":"resolve"` in the notification).
        query = sa.select(outbox.c.record).where(
            outbox.c.created_at >= start,
            outbox.c.created_at < end,
            sa.or_(
                outbox.c.kind == "alert_post",
                sa.and_(outbox.c.kind == "alert_edit", outbox.c.record.contains('"kind":"resolve"')),
            ),
        )
        counts: dict[str, tuple[int, int]] = {}
        with self.db.connect() as conn:
            for (record,) in conn.execute(query):
                message = decode_message(record)
                if not isinstance(message, AlertPost | AlertEdit):
                    continue
                note = message.notification
                opened, resolved = counts.get(note.channel, (0, 0))
                counts[note.channel] = (opened + (note.kind == "open"), resolved + (note.kind == "resolve"))
        return counts

    def latest_alert(self, group_key: str) -> Notification | None:
        """The newest notification queued for the alert group `group_key` (any life of it), which
        is what its Slack message shows or is about to; None if it never had one."""
        query = (
            sa.select(outbox.c.record)
            .where(
                outbox.c.group_id.startswith(group_id_prefix(group_key), autoescape=True),
                outbox.c.kind.in_(("alert_post", "alert_edit")),
            )
            .order_by(outbox.c.id.desc())
            .limit(5)
        )
        with self.db.connect() as conn:
            for (record,) in conn.execute(query):
                message = decode_message(record)
                # A hash prefix could be shared by another key; the notification names its own.
                if isinstance(message, AlertPost | AlertEdit) and message.notification.group_key == group_key:
                    return message.notification
        return None

    def message_for(self, group_id: str) -> tuple[str, str] | None:
        """(channel ID, ts) of the Slack message a group owns, if it was posted."""
        query = sa.select(slack_messages.c.channel, slack_messages.c.ts).where(
            slack_messages.c.group_id == group_id
        )
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        return (row.channel, row.ts) if row else None


def _messages(
    follow_up: OutboxMessage | Iterable[OutboxMessage | None] | None,
) -> list[OutboxMessage]:
    if follow_up is None:
        return []
    if isinstance(follow_up, Iterable):
        return [message for message in follow_up if message is not None]
    return [follow_up]


def outbox_row(message: OutboxMessage, now: datetime) -> dict[str, Any]:
    return {
        "created_at": now,
        "channel": message.channel,
        "group_id": message.group_id,
        "kind": message.kind,
        "record": encode_message(message),
    }


def _item(row: Any) -> OutboxItem:
    return OutboxItem(row.id, decode_message(row.record))
