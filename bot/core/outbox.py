"""What waits in the outbox: one kind per Slack action, each rendered only when it is sent (so a
renderer fix applies to messages already queued). Delivery handles each kind in its own function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.core.audit import AuditEntry
from bot.core.grouping import Notification


@dataclass(frozen=True, slots=True)
class AlertPost:
    """A new Slack message for an alert group (its first notification, or a repeat)."""

    notification: Notification
    kind: Literal["alert_post"] = "alert_post"

    @property
    def channel(self) -> str:
        return self.notification.channel

    @property
    def group_id(self) -> str:
        return self.notification.group_id


@dataclass(frozen=True, slots=True)
class AlertEdit:
    """The group's message edited in place (new totals, or resolved)."""

    notification: Notification
    kind: Literal["alert_edit"] = "alert_edit"

    @property
    def channel(self) -> str:
        return self.notification.channel

    @property
    def group_id(self) -> str:
        return self.notification.group_id


@dataclass(frozen=True, slots=True)
class ThreadReply:
    """The flows first seen since the previous message, in the thread of the group's message."""

    notification: Notification
    kind: Literal["thread_reply"] = "thread_reply"

    @property
    def channel(self) -> str:
        return self.notification.channel

    @property
    def group_id(self) -> str:
        return self.notification.group_id


@dataclass(frozen=True, slots=True)
class AuditLine:
    """One audit entry posted in the audit channel. `id` keeps lines apart in the outbox."""

    channel: str
    id: str
    entry: AuditEntry
    kind: Literal["audit_line"] = "audit_line"

    @property
    def group_id(self) -> str:
        return f"audit-{self.id}"


OutboxMessage = AlertPost | AlertEdit | ThreadReply | AuditLine
