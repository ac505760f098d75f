"""`recent` and `top` answers, for Slack and for the terminal: one phrasing, two markups.

Everything from the history is log text (endpoint names, namespaces, nodes): in Slack it goes in
code spans, escaped, so it cannot ping or format; the terminal prints it as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.core import commands as cmd
from bot.core.answers import Answer
from bot.core.history import DAY, FlowFilter, FlowTotal, TopRow, Window
from bot.render.blocks import LOWER_BOUND_NOTE, SECTION_LIMIT, clip, code, escape
from bot.render.replies import Block, Reply
from bot.render.text import plural
from bot.render.times import slack_time, utc

_BY_TITLE = {
    "namespace": "namespaces",
    "flow": "flows",
    "source": "sources",
    "destination": "destinations",
    "node": "nodes",
    "port": "ports",
}


@dataclass(frozen=True, slots=True)
class Markup:
    code: Callable[[str], str]
    bold: Callable[[str], str]
    link: Callable[[str, str], str]
    #: Sentences that may quote an API's own words (a Cloud Logging error).
    text: Callable[[str], str]
    #: A moment: Slack's date token (the reader's zone), or UTC for the terminal.
    time: Callable[[datetime], str] = utc


SLACK = Markup(code, lambda text: f"*{text}*", lambda url, text: f"<{url}|{text}>", escape, slack_time)
PLAIN = Markup(lambda text: text, lambda text: text, lambda url, text: f"{text}: {url}", lambda text: text)


def answer_reply(answer: Answer) -> Reply:
    """The answer as an ephemeral reply (or visible in the channel with `share`)."""
    title, body, footer = _parts(answer, SLACK)
    blocks: list[Block] = [section(title)]
    for chunk in chunks(body):
        blocks.append(section(chunk))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(footer, SECTION_LIMIT)}]})
    return Reply(
        text=title.splitlines()[0].replace("*", ""),
        blocks=blocks[:50],
        response_type="in_channel" if answer.command.share else "ephemeral",
    )


def answer_text(answer: Answer) -> str:
    """The answer as the terminal prints it."""
    title, body, footer = _parts(answer, PLAIN)
    return "\n".join([title, "", *body, "", footer]) + "\n"


def _parts(answer: Answer, markup: Markup) -> tuple[str, list[str], str]:
    command = answer.command
    scope = _scope(command.flow_filter, markup)
    source = "the bot's history" if answer.source == "history" else "Cloud Logging"
    if isinstance(command, cmd.Recent):
        heading = f"Recent denied flows{scope}"
    else:
        heading = f"Top {_BY_TITLE[command.by]} by denied attempts{scope}"
    buckets = (
        "whole UTC days, today so far" if answer.window.unit >= DAY else "whole hours, the current one so far"
    )
    where = f"From {source}, {_span(answer.window)} UTC ({buckets})."
    if isinstance(command, cmd.Top) and answer.compared:
        where += f" Compared with {_span(answer.window.previous())} UTC"
        where += ", scaled to this window's length." if answer.window.scale < 1 else "."
    body = _recent_lines(answer, markup) if answer.recent is not None else _top_lines(answer, markup)
    # Notes are clipped before the link goes on, so a long note can never cut the link in half.
    footer = clip(" ".join(markup.text(note) for note in [*answer.notes, LOWER_BOUND_NOTE]), 1_500)
    if answer.explorer:
        footer += " " + markup.link(answer.explorer, "Open in Logs Explorer")
    return f"{markup.bold(heading)}\n{where}", body, footer


def _recent_lines(answer: Answer, markup: Markup) -> list[str]:
    found = answer.recent
    assert found is not None
    if not found.flows:
        return ["No denied flows matched in this window."]
    muted = f", {found.muted_attempts:,} of them muted" if found.muted_attempts else ""
    lines = [
        f"At least {plural(found.attempts, 'denied attempt')} in {plural(found.flow_count, 'flow')} "
        f"({found.entries:,} log {'entry' if found.entries == 1 else 'entries'}){muted}.",
    ]
    lines.extend(_flow_line(flow, markup) for flow in found.flows)
    if found.more:
        lines.append(f"+{found.more:,} more; narrow with filters or open Logs Explorer.")
    return lines


def _flow_line(flow: FlowTotal, markup: Markup) -> str:
    nodes = ""
    if flow.nodes:
        nodes = f" · node {markup.code(flow.nodes[0])}"
        if len(flow.nodes) > 1:
            nodes += f" (+{len(flow.nodes) - 1})"
    cluster = f"{markup.code(flow.cluster)} " if flow.cluster else ""
    muted = " · muted" if flow.muted_attempts == flow.attempts else ""
    return (
        f"• {cluster}{markup.code(flow.source)} → {markup.code(flow.destination)} "
        f":{flow.port_label}, {flow.direction} · at least {plural(flow.attempts, 'attempt')} · "
        f"{_moment(flow.first_seen, flow.last_seen, markup)}{nodes}{muted}"
    )


def _top_lines(answer: Answer, markup: Markup) -> list[str]:
    found = answer.top
    assert found is not None
    if not found.rows:
        return ["No denied attempts matched in this window."]
    before = f" (previous period: {found.previous_total:,})" if answer.compared else ""
    lines = [f"At least {plural(found.total, 'denied attempt')} in all{before}."]
    lines.extend(
        f"{rank}. {markup.code(row.key)} — {row.attempts:,} ({row.share(found.total):.0%})"
        + (f" {_change(row)}" if answer.compared else "")
        for rank, row in enumerate(found.rows, start=1)
    )
    if found.more:
        lines.append(f"+{found.more:,} more.")
    return lines


def _change(row: TopRow) -> str:
    change = row.change
    if change is None:
        return "new"
    if change == 0:
        return "= same"
    arrow = "↑" if change > 0 else "↓"
    return f"{arrow}{abs(change):.0%}"


def _scope(flow_filter: FlowFilter, markup: Markup) -> str:
    words = [
        f"{name}={value}"
        for name, value in (
            ("cluster", flow_filter.cluster),
            ("ns", flow_filter.namespace),
            ("src", flow_filter.src),
            ("dst", flow_filter.dst),
            ("port", flow_filter.port),
            ("proto", flow_filter.protocol),
        )
        if value is not None
    ]
    return f" for {markup.code(' '.join(words))}" if words else ""


def _span(window: Window) -> str:
    start, end = window.start, window.end
    if start.date() == end.date():
        return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}"
    return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M}"


def _moment(first: datetime, last: datetime, markup: Markup = PLAIN) -> str:
    same_minute = first.replace(second=0, microsecond=0) == last.replace(second=0, microsecond=0)
    if markup is not PLAIN:  # each end in the reader's zone, with its date
        return markup.time(last) if same_minute else f"{markup.time(first)} – {markup.time(last)}"
    if first.date() != last.date():
        return f"{first:%m-%d %H:%M}–{last:%m-%d %H:%M} UTC"
    if same_minute:
        return f"{last:%H:%M} UTC"
    return f"{first:%H:%M}–{last:%H:%M} UTC"


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}


def chunks(lines: list[str]) -> list[str]:
    """Whole lines per section, each section within Slack's 3,000 characters."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for whole in lines:
        line = clip(whole, SECTION_LIMIT)
        if current and used + len(line) + 1 > SECTION_LIMIT:
            chunks.append("\n".join(current))
            current, used = [], 0
        current.append(line)
        used += len(line) + 1
    if current:
        chunks.append("\n".join(current))
    return chunks
