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
  refuses: send it as plain text. Other permanent errors: a sentence in the log saying what to fix,
  and a retry every few minutes so alerts flow again once someone fixes it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.adapters.slack import SlackFailure, SlackGateway
from bot.adapters.store import Fence, LeaseLost, OutboxItem, Store
from bot.core.grouping import FlowSummary, Notification
from bot.core.outbox import AlertEdit, AlertPost, AuditLine, ThreadReply, thread_reply
from bot.render.blocks import SlackMessage, render_alert, render_thread_reply
from bot.render.replies import audit_message

log = logging.getLogger(__name__)

PACE = timedelta(seconds=1)
MAX_BACKOFF = timedelta(seconds=60)
PERMANENT_RETRY = timedelta(minutes=5)


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
        for channel, items in self.store.outbox.pending_by_channel().items():
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
            case ThreadReply() as reply:
                self._reply(channel_id, head.id, reply)
            case AuditLine() as line:
                self._post_audit_line(channel_id, state, head.id, line)

    def _post_alert(self, channel_id: str, state: ChannelState, item_id: int, post: AlertPost) -> None:
        note = post.notification
        send = functools.partial(self.slack.post, channel_id)
        ts = self._call(channel_id, state, send, render_alert(note), note.group_id)
        self.store.outbox.complete(
            [item_id],
            self.clock(),
            message=(note.group_id, channel_id, ts),
            follow_up=thread_reply(note),
            fence=self.fence,
        )

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
        message = render_alert(note)
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
