"""Notifications as Slack Block Kit messages: the alert (posted, then edited) and thread replies.

Everything from a log entry is untrusted: it is escaped for mrkdwn (`&`, `<`, `>`, so nothing can
ping a channel or forge a link) and shown inside code spans, where `*`, `_` and `~` cannot change
the formatting. Slack's limits are kept with a visible marker: 50 blocks, 3,000 characters per
section text, 150 per header, 2,000 per field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypedDict

from bot.core.grouping import FlowSummary, Notification
from bot.core.logquery import deny_filter, explorer_url
from bot.core.mutes import Mute
from bot.render import ids, text
from bot.render.times import slack_time

HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
BUTTON_VALUE_LIMIT = 2000
URL_LIMIT = 3000
THREAD_FLOWS_LIMIT = 20
TRUNCATED = "… (truncated)"
LOWER_BOUND_NOTE = (
    "Counts are lower bounds: GKE logs at most 500 lines per second per node and drops the rest."
)

Block = dict[str, Any]


class SlackMessage(TypedDict):
    text: str
    blocks: list[Block]


def escape(value: str) -> str:
    """mrkdwn control characters, as Slack asks: https://api.slack.com/reference/surfaces/formatting."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(value: str) -> str:
    """A code span: formatting characters inside it are shown as they are. A backtick would close
    the span, so it becomes a look-alike."""
    return f"`{escape(value.replace('`', 'ˋ'))}`" if value else "`?`"


def clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - len(TRUNCATED)] + TRUNCATED


def fit(
    lines: list[str], tail: Callable[[int], str | None], hidden: int = 0, limit: int = SECTION_LIMIT
) -> str:
    """As many whole lines as fit in one section, then `tail(how many are not shown)`."""
    budget = limit - 200  # room for the tail line
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    if not kept and lines:  # a single line longer than a section: show it cut
        kept.append(clip(lines[0], budget))
    last = tail(hidden + len(lines) - len(kept))
    return clip("\n".join([*kept, last] if last else kept), limit)


def render_alert(
    note: Notification, mute: Mute | None = None, superseded_at: datetime | None = None
) -> SlackMessage:
    """The group's message. `mute`: the Mute button's mute of the group, while active.
    `superseded_at`: this is an older message of the group, posted again then."""
    title = text.title(note)
    state = _state(note, mute, superseded_at)
    fields = [
        {"type": "mrkdwn", "text": clip(f"*{name}*\n{_label_value(name, value)}", FIELD_LIMIT)}
        for name, value in note.labels
    ]
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(title, HEADER_LIMIT), "emoji": False}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": state},
            **({"fields": fields[:10]} if fields else {}),
        },
        # Only numbers and our words: not escaped, so the times stay Slack's date tokens.
        {"type": "section", "text": {"type": "mrkdwn", "text": text.totals(note, slack_time)}},
    ]
    if note.top_flows:
        lines = [text.flow_line(flow, code, slack_time) for flow in note.top_flows]
        body = fit(lines, lambda hidden: _italic(text.more_flows(hidden, note.other_count)), note.more_flows)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body}})
    actions = _actions(note)
    if actions:
        blocks.append({"type": "actions", "block_id": "netlog_alert_actions", "elements": actions})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": LOWER_BOUND_NOTE}]})
    words = (
        "posted again" if superseded_at else "muted" if mute and note.kind != "resolve" else text.state(note)
    )
    fallback = f"{title} ({words}): at least {text.plural(note.total, 'denied attempt')}"
    return {"text": escape(fallback), "blocks": blocks}


def _state(note: Notification, mute: Mute | None, superseded_at: datetime | None) -> str:
    if superseded_at is not None:
        return (
            f":arrow_down: *Posted again* {slack_time(superseded_at)}, still active: "
            "the newer message below is kept up to date, not this one."
        )
    quiet = (
        f":large_green_circle: *Quiet since* {slack_time(note.last_seen)}" if note.kind == "resolve" else ""
    )
    if mute is None:
        return quiet or ":red_circle: *Active*"
    muted = f":mute: *Muted* by <@{escape(mute.created_by)}> until {slack_time(mute.expires_at)}"
    return f"{quiet}\n{muted}" if quiet else muted


def _label_value(name: str, value: str) -> str:
    return code(value) if value else f"_{text.empty_label(name)}_"


def _italic(value: str | None) -> str | None:
    return f"_{escape(value)}_" if value else None


def _actions(note: Notification) -> list[Block]:
    buttons: list[Block] = []
    url = explorer_url(
        note.project, deny_filter(note.project, note.labels, note.first_seen), note.first_seen, note.last_seen
    )
    if note.project and len(url) <= URL_LIMIT:  # Slack refuses longer button URLs
        buttons.append(
            {
                "type": "button",
                "action_id": ids.OPEN_LOGS,
                "text": {"type": "plain_text", "text": "Open in Logs Explorer"},
                "url": url,
            }
        )
    if menu := why_denied_menu(note.top_flows):
        buttons.append(menu)
    if len(note.group_key) <= BUTTON_VALUE_LIMIT:  # a mute names the group; a longer key can't fit
        for action_id, label in ((ids.MUTE_1H, "Mute 1 h"), (ids.MUTE_24H, "Mute 24 h")):
            buttons.append(
                {
                    "type": "button",
                    "action_id": action_id,
                    "text": {"type": "plain_text", "text": label},
                    "value": note.group_key,
                }
            )
    return buttons


#: Slack's limits for a select menu's options: 75 characters of text, 150 of value.
OPTION_TEXT_LIMIT, OPTION_VALUE_LIMIT = 75, 150


def why_denied_menu(flows: tuple[FlowSummary, ...]) -> Block | None:
    """A "Why denied?" menu of the alert's flows; picking one asks the cluster (`/netlog explain`)."""
    options = []
    for flow in flows:
        key = flow.key
        label = f"{key.source} → {key.destination}:{key.port_label}"
        value = f"{key.cluster}{ids.FLOW_SEPARATOR}{label}"
        if key.cluster and len(value) <= OPTION_VALUE_LIMIT:
            options.append(
                {"text": {"type": "plain_text", "text": clip(label, OPTION_TEXT_LIMIT)}, "value": value}
            )
    if not options:
        return None
    return {
        "type": "static_select",
        "action_id": ids.EXPLAIN,
        "placeholder": {"type": "plain_text", "text": "Why denied?"},
        "options": options,
    }


def render_thread_reply(note: Notification, flows: tuple[FlowSummary, ...]) -> SlackMessage:
    """New flows in a group, announced once in the alert's thread."""
    heading = "New flow" if len(flows) == 1 else f"{len(flows)} new flows"
    lines = [f"• {text.flow_line(flow, code, slack_time)}" for flow in flows[:THREAD_FLOWS_LIMIT]]
    body = f"*{heading}* denied since the last update:\n" + fit(
        lines, lambda hidden: f"_+{hidden} more_" if hidden else None, len(flows) - len(lines)
    )
    fallback = f"{heading} in {text.title(note)}"
    return {
        "text": escape(fallback),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body}}],
    }
