"""Notifications as terminal text: what each Slack channel would show, for `demo` and `replay`."""

from __future__ import annotations

from bot.core.grouping import Notification
from bot.render import text

ACTIONS = {
    "open": "new message",
    "update": "edits message",
    "repeat": "posts again (still active)",
    "resolve": "edits message",
}


def render_notification(note: Notification) -> str:
    lines = [
        f"── {note.channel} · {note.at:%Y-%m-%d %H:%M:%S} UTC · {ACTIONS[note.kind]} ─────",
        f"  {text.title(note)}  [{text.state(note)}]",
        f"  {text.totals(note)}",
    ]
    lines.extend(f"    {text.flow_line(flow)}" for flow in note.top_flows)
    more = text.more_flows(note.more_flows, note.other_count)
    if more:
        lines.append(f"    {more}")
    lines.extend(f"  ↳ in thread: new flow {text.flow_line(flow)}" for flow in note.new_flows)
    return "\n".join(lines)
