"""Mutes: from `/netlog mute` (matchers, a duration within the configured limits, a reason) or from
an alert's Mute button (exactly that alert group, decoded from the button's group key); `/netlog
mutes` lists them and `/netlog unmute ID` ends one early. Muted denies are still stored and counted.
A mute shows on the messages of the alerts it silences whole (who, until when), and leaves them
when ended early."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.adapters.store import Store
from bot.core import commands as cmd
from bot.core.audit import AuditEntry
from bot.core.durations import format_duration
from bot.core.grouping import GroupKey
from bot.core.mutes import Mute, covers_group, matchers_of_group, mute_duration
from bot.core.netlogging import Refused
from bot.core.outbox import AlertRedraw
from bot.render import replies
from bot.render.blocks import code
from bot.render.replies import Card, Reply
from bot.render.times import slack_time
from bot.services.audit import Auditor
from bot.settings import MutesSection

#: Alert messages redrawn at once when a mute begins or ends.
REDRAWS_PER_MUTE = 20


class Mutes:
    def __init__(
        self, store: Store, auditor: Auditor, limits: MutesSection, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.auditor = auditor
        self.limits = limits
        self.clock = clock

    def card(self, command: cmd.Mute | cmd.Unmute) -> Card:
        if isinstance(command, cmd.Unmute):
            return replies.unmute_card(command.mute_id)
        return replies.mute_card(command, self._duration(command), self.clock())

    def listing(self) -> Reply:
        now = self.clock()
        return replies.mutes(self.store.mutes.active(now), now)

    def mute(self, user: str, command: cmd.Mute, group_key: str | None = None) -> Reply:
        now = self.clock()
        duration = self._duration(command)
        mute = self.store.mutes.add(
            Mute(0, command.matchers, now, now + duration, user, command.reason, group_key)
        )
        after = f"#{mute.id} {mute.label} for {format_duration(duration)}"
        self.auditor.record(AuditEntry(now, user, "mute", "applied", command.reason, after=after))
        self._redraw(mute, now)
        return replies.note(
            f"Muted #{mute.id}: {code(mute.label)} until {slack_time(mute.expires_at)}. "
            "Denies are still stored and counted."
        )

    def mute_alert(self, user: str, group_key: str, duration: timedelta, channel: str) -> Reply:
        """An alert's Mute button: that group only (its route and labels), for `duration`."""
        try:
            matchers = matchers_of_group(GroupKey.decode(group_key).labels)
        except ValueError:  # not a key this bot rendered
            return replies.problem("This button does not name an alert group I know; use `/netlog mute`.")
        try:
            return self.mute(user, cmd.Mute(matchers, duration, f"from an alert in {channel}"), group_key)
        except Refused as error:
            return replies.problem(str(error))

    def unmute(self, user: str, command: cmd.Unmute, text: str) -> Reply:
        now = self.clock()
        ended = self.store.mutes.end(command.mute_id, now)
        if ended is None:
            return replies.problem(f"There is no active mute #{command.mute_id}; `/netlog mutes` lists them.")
        self.auditor.record(AuditEntry(now, user, "unmute", "applied", f"/netlog {text}", before=ended.label))
        self._redraw(ended, now)
        return replies.note(f"Mute #{ended.id} ({code(ended.label)}) ended. Alerts for it resume.")

    def _redraw(self, mute: Mute, now: datetime) -> None:
        redraw_alerts(self.store, mute, now)

    def _duration(self, command: cmd.Mute) -> timedelta:
        try:
            return mute_duration(command.duration, self.limits.default_duration, self.limits.max_duration)
        except ValueError as error:
            raise Refused(str(error).capitalize() + ".") from None


def redraw_alerts(store: Store, mute: Mute, now: datetime) -> None:
    """The messages of the alerts `mute` silences whole (its button's group; for `/netlog mute`,
    the open groups whose labels it matches) are drawn again to say they are muted, or no longer:
    through the outbox, paced and retried like every Slack call."""
    if mute.group_key is not None:
        keys = [mute.group_key]
    else:
        groups = store.grouping.headers()
        keys = [group.key for group in groups if covers_group(mute, group.key, group.labels)]
    # Edits share each channel's pace with new alerts: a mute of a whole cluster must not
    # hold those back for minutes. The rest say it at their next edit.
    for key in keys[:REDRAWS_PER_MUTE]:
        note = store.outbox.latest_alert(key)
        if note is not None:
            store.outbox.enqueue(AlertRedraw(note), now)


#: How often the leader looks for mutes whose time ran out, and how far back it looks the first
#: time (a mute that ran out while no replica led is still redrawn after a takeover).
EXPIRY_EVERY = timedelta(minutes=1)
EXPIRY_LOOKBACK = timedelta(minutes=30)


class MuteExpiry:
    """A job of the leader: the alerts of a mute whose time ran out are drawn again without it, so
    none keeps saying "Muted … until" a time that has passed. An early unmute redraws at once too;
    a second redraw of the same alert changes nothing anyone sees."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self._since: datetime | None = None

    def run(self) -> int:
        now = self.clock()
        since = self._since or now - EXPIRY_LOOKBACK
        expired = self.store.mutes.expired_between(since, now)
        for mute in expired:
            redraw_alerts(self.store, mute, now)
        self._since = now
        return len(expired)
