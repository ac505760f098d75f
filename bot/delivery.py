"""Delivers the outbox to Slack: alert posts, edits in place, thread replies and audit lines, each
rendered only now and each kind sent by its own function; paced, retried, never lost.

Rules, in the order they bite:
- A row leaves the outbox only after Slack accepted it (`store.outbox.complete`, one transaction that
  also remembers the message's ts). A crash before that re-sends it; nothing is ever dropped.
- Per channel, one call per second at most (Slack's posting limit), oldest row first.
- Consecutive edits of one message are coalesced: only the newest is sent; the new flows of all of
  them still get their thread reply.
- 429: everything waits `Retry-After`. 5xx, timeouts: the channel backs off (1 s, 2 s, ... 60 s).
  `not_in_channel`: join once, then retry. A deleted message: post a new one. A payload Slack
  refuses: send it as plain text. Other permanent errors: a sentence in the log saying what to
  fix, and a retry every few minutes so alerts flow again once someone fixes it.
- A group posted afresh (a repeat) leaves its older message saying so ("posted again"), an edit
  queued like any other; a muted alert (its Mute button, or a mute on its labels) says who muted
  it and until when, from the mutes as they are when the message is drawn.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.adapters.slack import SlackFailure, SlackGateway
from bot.adapters.store import Fence, LeaseLost, OutboxItem, Store
from bot.core.grouping import FlowSummary, Notification
from bot.core.mutes import mute_of_group
from bot.core.outbox import (
    AlertEdit,
    AlertPost,
    AlertRedraw,
    AlertSuperseded,
    AuditLine,
    DigestChart,
    DigestPost,
    ThreadReply,
    digest_chart,
    thread_reply,
)
from bot.render.audit import audit_message
from bot.render.blocks import SlackMessage, render_alert, render_thread_reply
from bot.render.chart import render_chart
from bot.render.digest import CHART_TITLE, digest_blocks, digest_summary

log = logging.getLogger(__name__)

PACE = timedelta(seconds=1)
MAX_BACKOFF = timedelta(seconds=60)
PERMANENT_RETRY = timedelta(minutes=5)
#: A digest's chart is tried this many times, this long apart.
CHART_ATTEMPTS = 2
CHART_RETRY = timedelta(minutes=10)


@dataclass(slots=True)
class ChannelState:
    next_call: datetime | None = None
    failures: int = 0
    joined: bool = False


@dataclass(slots=True)
class Delivery:
    store: Store
    slack: SlackGateway
    clock: Callable[[], datetime]
    channels: dict[str, ChannelState] = field(default_factory=dict)
    paused_until: datetime | None = None
    fence: Fence | None = None
    """With several replicas: send only while holding the alerts lease (checked before each call)."""

    def deliver_due(self) -> int:
        """One pass over the outbox: at most one Slack call per ready channel. Returns calls made."""
        now = self.clock()
        if self.paused_until and now < self.paused_until:
            return 0
        calls = 0
        for channel, pending in self.store.outbox.pending_by_channel().items():
            items = [item for item in pending if _due(item, now)]
            if not items:
                continue
            state = self.channels.setdefault(channel, ChannelState())
            if state.next_call and self.clock() < state.next_call:
                continue
            if self.fence is not None and not self.store.leases.holds(self.fence, self.clock()):
                raise LeaseLost(self.fence)
            calls += 1
            try:
                self._deliver_head(channel, items, state)
            except SlackFailure as failure:
                self._failed(channel, items[0], state, failure)
                if failure.workspace_wide:
                    break
            else:
                state.failures = 0
                state.next_call = self.clock() + PACE
        return calls

    def _deliver_head(self, channel: str, items: list[OutboxItem], state: ChannelState) -> None:
        head = items[0]
        channel_id = self.slack.channel_id(channel)
        match head.message:
            case AlertPost() as post:
                self._post_alert(channel_id, state, head.id, post)
            case AlertEdit():
                self._edit_alert(channel_id, state, _edit_run(items))
            case AlertSuperseded() as older:
                self._supersede(state, head.id, older)
            case AlertRedraw() as redraw:
                self._redraw(state, head.id, redraw)
            case ThreadReply() as reply:
                self._reply(channel_id, head.id, reply)
            case AuditLine() as line:
                self._post_audit_line(channel_id, state, head.id, line)
            case DigestPost() as digest:
                self._post_digest(channel_id, state, head.id, digest)
            case DigestChart() as chart:
                self._upload_chart(channel_id, head.id, chart)

    def _post_digest(self, channel_id: str, state: ChannelState, item_id: int, post: DigestPost) -> None:
        zone = ZoneInfo(post.timezone)
        message: SlackMessage = {
            "text": digest_summary(post.digest),
            "blocks": digest_blocks(post.digest, post.project, zone),
        }
        send = functools.partial(self.slack.post, channel_id)
        ts = self._call(channel_id, state, send, message, post.group_id)
        self.store.outbox.complete(
            [item_id],
            self.clock(),
            message=(post.group_id, channel_id, ts),
            follow_up=digest_chart(post),
            fence=self.fence,
        )

    def _upload_chart(self, channel_id: str, item_id: int, chart: DigestChart) -> None:
        """The chart into the digest's thread. It is an extra: a failure (but Slack's 429, which
        pauses everything as usual) is logged, tried once more later, then given up; the text
        digest is already in the channel."""
        known = self.store.outbox.message_for(chart.group_id)
        zone = ZoneInfo(chart.timezone)
        try:
            content = render_chart(chart.series, CHART_TITLE, zone)
            name = f"{chart.group_id}.png"
            try:
                self.slack.upload_file(channel_id, known[1] if known else None, name, content, CHART_TITLE)
            except SlackFailure as failure:
                if failure.kind != "not_in_channel":
                    raise
                self.slack.join(channel_id)  # sharing a file needs membership, posting may not
                self.slack.upload_file(channel_id, known[1] if known else None, name, content, CHART_TITLE)
        except SlackFailure as failure:
            if failure.kind == "rate_limited":
                raise
            self._chart_failed(item_id, chart, failure.advice(channel_id))
        except Exception as error:  # drawing failed: the digest stands without its chart
            log.exception("delivery: could not draw the chart of %s", chart.group_id)
            self._chart_failed(item_id, replace(chart, attempt=CHART_ATTEMPTS), str(error))
        else:
            self.store.outbox.complete([item_id], self.clock(), fence=self.fence)

    def _chart_failed(self, item_id: int, chart: DigestChart, reason: str) -> None:
        if chart.attempt < CHART_ATTEMPTS:
            log.warning(
                "delivery: the chart of %s was not uploaded (%s); trying again in %d min",
                chart.group_id,
                reason,
                CHART_RETRY.total_seconds() // 60,
            )
            again = replace(chart, attempt=chart.attempt + 1, not_before=self.clock() + CHART_RETRY)
            self.store.outbox.complete([item_id], self.clock(), follow_up=again, fence=self.fence)
            return
        log.error(
            "delivery: gave up on the chart of %s (%s); the digest was posted without it",
            chart.group_id,
            reason,
        )
        self.store.outbox.complete([item_id], self.clock(), fence=self.fence)

    def _post_alert(self, channel_id: str, state: ChannelState, item_id: int, post: AlertPost) -> None:
        note = post.notification
        older = self.store.outbox.message_for(note.group_id)  # a repeat's earlier message
        send = functools.partial(self.slack.post, channel_id)
        ts = self._call(channel_id, state, send, self._render(note), note.group_id)
        superseded = AlertSuperseded(note, *older) if older and older[1] != ts else None
        self.store.outbox.complete(
            [item_id],
            self.clock(),
            message=(note.group_id, channel_id, ts),
            follow_up=(thread_reply(note), superseded),
            fence=self.fence,
        )

    def _supersede(self, state: ChannelState, item_id: int, older: AlertSuperseded) -> None:
        """The older message says the group was posted again; deleted meanwhile, nothing to say."""
        message = render_alert(older.notification, superseded_at=older.notification.at)
        update = functools.partial(self.slack.update, older.channel_id, older.ts)
        try:
            self._call(older.channel_id, state, update, message, older.group_id)
        except SlackFailure as failure:
            if failure.kind != "message_gone":
                raise
        self.store.outbox.complete([item_id], self.clock(), fence=self.fence)

    def _redraw(self, state: ChannelState, item_id: int, redraw: AlertRedraw) -> None:
        """The group's message, as it is, with its mute as it now is. Never a new post: a message
        not posted (or deleted) shows its mute when it is."""
        note = redraw.notification
        known = self.store.outbox.message_for(note.group_id)
        if known is not None:
            update = functools.partial(self.slack.update, *known)
            try:
                self._call(known[0], state, update, self._render(note), note.group_id)
            except SlackFailure as failure:
                if failure.kind != "message_gone":
                    raise
        self.store.outbox.complete([item_id], self.clock(), fence=self.fence)

    def _render(self, note: Notification) -> SlackMessage:
        now = self.clock()
        mute = mute_of_group(note.group_key, note.labels, self.store.mutes.active(now), now)
        return render_alert(note, mute=mute)

    def _edit_alert(self, channel_id: str, state: ChannelState, run: list[tuple[int, AlertEdit]]) -> None:
        """Only the newest edit of the run is sent; the flows new in any of them get one reply."""
        notes = [edit.notification for _, edit in run]
        latest = replace(notes[-1], new_flows=_union(notes))
        ts = self._edit(channel_id, state, latest)
        self.store.outbox.complete(
            [item_id for item_id, _ in run],
            self.clock(),
            message=(latest.group_id, channel_id, ts),
            follow_up=thread_reply(latest),
            fence=self.fence,
        )

    def _post_audit_line(self, channel_id: str, state: ChannelState, item_id: int, line: AuditLine) -> None:
        reply = audit_message(line.entry)
        post = functools.partial(self.slack.post, channel_id)
        self._call(channel_id, state, post, {"text": reply.text, "blocks": reply.blocks}, line.group_id)
        self.store.outbox.complete([item_id], self.clock(), fence=self.fence)

    def _edit(self, channel_id: str, state: ChannelState, note: Notification) -> str:
        message = self._render(note)
        post = functools.partial(self.slack.post, channel_id)
        known = self.store.outbox.message_for(note.group_id)
        if known is None:  # its post never went out (or was purged): post this state instead
            return self._call(channel_id, state, post, message, note.group_id)
        known_channel, ts = known
        try:
            update = functools.partial(self.slack.update, known_channel, ts)
            self._call(known_channel, state, update, message, note.group_id)
        except SlackFailure as failure:
            if failure.kind != "message_gone":
                raise
            log.info("delivery: the alert message in %s was deleted; posting it again", known_channel)
            return self._call(channel_id, state, post, message, note.group_id)
        return ts

    def _reply(self, channel_id: str, item_id: int, reply: ThreadReply) -> None:
        note = reply.notification
        known = self.store.outbox.message_for(note.group_id)
        message = render_thread_reply(note, note.new_flows)
        thread_ts = known[1] if known else None
        try:
            self.slack.post(channel_id, message, thread_ts=thread_ts)
        except SlackFailure as failure:
            if failure.kind != "message_gone":
                raise
            self.slack.post(channel_id, message)  # the alert was deleted: say it in the channel
        self.store.outbox.complete([item_id], self.clock(), fence=self.fence)

    def _call(
        self,
        channel_id: str,
        state: ChannelState,
        send: Callable[[SlackMessage], str | None],
        message: SlackMessage,
        what: str,
    ) -> str:
        """`send(message)`, joining the channel once if needed, and sending the same call with plain
        text if Slack refuses the blocks (a renderer bug must not hold alerts back)."""
        try:
            result = send(message)
        except SlackFailure as failure:
            if failure.kind == "not_in_channel" and not state.joined:
                state.joined = True
                log.info("delivery: joining %s to post messages", channel_id)
                self.slack.join(channel_id)
                result = send(message)
            elif failure.kind == "bad_payload":
                log.error(
                    "delivery: Slack refused the blocks of %s (%s); sending plain text", what, failure.error
                )
                result = send({"text": message["text"], "blocks": []})
            else:
                raise
        return result or ""

    def _failed(self, channel: str, item: OutboxItem, state: ChannelState, failure: SlackFailure) -> None:
        now = self.clock()
        if failure.kind == "rate_limited":
            self.paused_until = now + timedelta(seconds=failure.retry_after)
            log.warning("delivery: Slack asked to wait %.0f s (429); waiting", failure.retry_after)
            return
        state.failures += 1
        if failure.kind == "unavailable":
            delay = min(MAX_BACKOFF, timedelta(seconds=2 ** (state.failures - 1)))
            log.warning(
                "delivery: Slack unavailable (%s); retrying %s in %.0f s",
                failure.error,
                channel,
                delay.total_seconds(),
            )
        else:
            delay = PERMANENT_RETRY
            log.error(
                "delivery: %s. Will retry in %d min.", failure.advice(channel), delay.total_seconds() // 60
            )
            self.store.outbox.note_error([item.id], failure.advice(channel))
        state.next_call = now + delay
        if failure.workspace_wide:
            self.paused_until = now + delay


def _edit_run(items: list[OutboxItem]) -> list[tuple[int, AlertEdit]]:
    """The head edit plus later edits of the same message, up to the group's next post."""
    head = items[0]
    assert isinstance(head.message, AlertEdit)
    run = [(head.id, head.message)]
    for item in items[1:]:
        if item.group_id != head.group_id:
            continue
        if not isinstance(item.message, AlertEdit):
            break
        run.append((item.id, item.message))
    return run


def _union(notes: list[Notification]) -> tuple[FlowSummary, ...]:
    flows: dict[object, FlowSummary] = {}
    for note in notes:
        for flow in note.new_flows:
            flows[flow.key] = flow
    return tuple(flows.values())


def _due(item: OutboxItem, now: datetime) -> bool:
    """A chart waiting to be tried again is not due before its time; the rest always is (and the
    channel's other messages go by it meanwhile)."""
    message = item.message
    return not (
        isinstance(message, DigestChart) and message.not_before is not None and now < message.not_before
    )
