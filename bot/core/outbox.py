"""What waits in the outbox: one kind per Slack action, each rendered only when it is sent (so a
renderer fix applies to messages already queued). Delivery handles each kind in its own function;
the store keeps them through one codec, with `kind` telling them apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.core.audit import AuditEntry
from bot.core.grouping import Notification


@dataclass(frozen=True, slots=True)
class _AboutAGroup:
    """A message about one alert group: it goes to the group's channel, and its message."""

    notification: Notification

    @property
    def channel(self) -> str:
        return self.notification.channel

    @property
    def group_id(self) -> str:
        return self.notification.group_id


@dataclass(frozen=True, slots=True)
class AlertPost(_AboutAGroup):
    """A new Slack message for an alert group (its first notification, or a repeat)."""

    kind: Literal["alert_post"] = "alert_post"


@dataclass(frozen=True, slots=True)
class AlertEdit(_AboutAGroup):
    """The group's message edited in place (new totals, or resolved)."""

    kind: Literal["alert_edit"] = "alert_edit"


@dataclass(frozen=True, slots=True)
class ThreadReply(_AboutAGroup):
    """The flows first seen since the previous message, in the thread of the group's message."""

    kind: Literal["thread_reply"] = "thread_reply"


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


def alert_message(note: Notification) -> AlertPost | AlertEdit:
    """An open or a repeat posts a new message; an update or a resolve edits the group's message."""
    if note.kind in ("open", "repeat"):
        return AlertPost(note)
    return AlertEdit(note)


def thread_reply(note: Notification) -> ThreadReply | None:
    """The reply that follows a delivered alert when it brought flows not announced before."""
    return ThreadReply(note) if note.new_flows else None
