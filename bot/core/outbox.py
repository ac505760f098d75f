"""What waits in the outbox: one kind per Slack action, each rendered only when it is sent (so a
renderer fix applies to messages already queued). Delivery handles each kind in its own function;
the store keeps them through one codec, with `kind` telling them apart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.core.audit import AuditEntry
from bot.core.digest import Digest, Series
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
class AlertSuperseded(_AboutAGroup):
    """An older message of the group, edited once the group was posted afresh (a repeat): it says
    so, or its ":red_circle: Active" would stand for ever. `notification` is the repeat's; the older
    message is `ts` in the Slack channel `channel_id` (the group's message is the new one now)."""

    channel_id: str
    ts: str
    kind: Literal["alert_superseded"] = "alert_superseded"


@dataclass(frozen=True, slots=True)
class AlertRedraw(_AboutAGroup):
    """The group's message drawn again from its latest notification, because something around it
    changed what it says: a mute from its button, or that mute ended early."""

    kind: Literal["alert_redraw"] = "alert_redraw"


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


@dataclass(frozen=True, slots=True)
class DigestPost:
    """A channel's digest of one period, rendered when sent in `timezone`; its chart follows in
    the message's thread."""

    channel: str
    digest: Digest
    timezone: str = "UTC"
    project: str | None = None
    #: Set for a digest someone asked for (`/netlog digest now`): it is its own message, apart
    #: from the scheduled digest of the same period.
    requested: str = ""
    kind: Literal["digest_post"] = "digest_post"

    @property
    def group_id(self) -> str:
        ident = digest_id(self.channel, self.digest.period.start)
        return f"{ident}-{self.requested}" if self.requested else ident


@dataclass(frozen=True, slots=True)
class DigestChart:
    """A digest's chart, uploaded into the thread of the digest's message (`group_id`). A failed
    upload is queued once more, `not_before` a while later; the text digest stands without it."""

    channel: str
    group_id: str
    series: Series
    timezone: str = "UTC"
    attempt: int = 1
    not_before: datetime | None = None
    kind: Literal["digest_chart"] = "digest_chart"


def digest_id(channel: str, start: datetime) -> str:
    return f"digest-{channel}-{start:%Y%m%dT%H%MZ}"


def digest_chart(post: DigestPost) -> DigestChart:
    return DigestChart(post.channel, post.group_id, post.digest.series, post.timezone)


OutboxMessage = (
    AlertPost | AlertEdit | AlertSuperseded | AlertRedraw | ThreadReply | AuditLine | DigestPost | DigestChart
)


def alert_message(note: Notification) -> AlertPost | AlertEdit:
    """An open or a repeat posts a new message; an update or a resolve edits the group's message."""
    if note.kind in ("open", "repeat"):
        return AlertPost(note)
    return AlertEdit(note)


def thread_reply(note: Notification) -> ThreadReply | None:
    """The reply that follows a delivered alert when it brought flows not announced before."""
    return ThreadReply(note) if note.new_flows else None
