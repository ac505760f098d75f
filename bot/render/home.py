"""The bot's App Home tab: per cluster, its NetworkLogging settings, the alert groups open there,
the mutes that apply to it, and its top namespaces of the last 24 h.

Cluster names, labels, mute matchers and reasons are escaped and shown in code spans, like log
text. Slack's limits for a home view are kept with a visible marker: 100 blocks (clusters past
that are named in one closing line), 3,000 characters per section, 150 per header.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from bot.core.durations import format_duration
from bot.core.grouping import Group
from bot.core.history import Top
from bot.core.mutes import Mute
from bot.core.netlogging import LoggingSpec, meaning
from bot.render.blocks import HEADER_LIMIT, LOWER_BOUND_NOTE, SECTION_LIMIT, Block, clip, code, escape, fit
from bot.render.text import empty_label, plural
from bot.render.times import slack_time

VIEW_BLOCKS_LIMIT = 100
CLUSTER_BLOCKS = 6  # divider, header, settings, groups, mutes, top namespaces
TITLE = "Network policy logging"
#: Each cluster's parts, by their headings.
SETTINGS, GROUPS = "NetworkLogging", "Active alert groups"
MUTES, TOP = "Active mutes", "Top namespaces, last 24 h"

View = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClusterHome:
    """One cluster's part of the tab. None stands for a part the viewer may not see (the command
    that shows it is for operators, `access.permissions`)."""

    name: str
    #: The NetworkLogging spec, or the sentence saying why it could not be read.
    spec: LoggingSpec | str | None
    groups: Sequence[Group] | None
    mutes: Sequence[Mute] | None
    top: Top | None


def applies_to(mute: Mute, cluster: str) -> bool:
    """A mute without a `cluster` matcher applies to every cluster."""
    return fnmatchcase(cluster, dict(mute.matchers).get("cluster", "*"))


def render_home(clusters: Sequence[ClusterHome], now: datetime) -> View:
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": TITLE, "emoji": False}},
        _context(f"Refreshed {slack_time(now)}, when you opened this tab. {LOWER_BOUND_NOTE}"),
    ]
    if not clusters:
        blocks.append(_section("No clusters are configured (`clusters:` in the config)."))
    room = (VIEW_BLOCKS_LIMIT - len(blocks) - 1) // CLUSTER_BLOCKS  # one block left for the marker
    for cluster in clusters[:room]:
        blocks += _cluster(cluster, now)
    hidden = clusters[room:]
    if hidden:
        names = ", ".join(code(c.name) for c in hidden)
        blocks.append(_section(f"_{len(hidden)} more cluster(s) not shown:_ {names}"))
    return {"type": "home", "blocks": blocks}


def _cluster(cluster: ClusterHome, now: datetime) -> list[Block]:
    return [
        {"type": "divider"},
        {"type": "header", "text": {"type": "plain_text", "text": clip(cluster.name, HEADER_LIMIT)}},
        _section(_settings(cluster.spec) if cluster.spec is not None else _withheld(SETTINGS, "status")),
        _section(_groups(cluster.groups) if cluster.groups is not None else _withheld(GROUPS, "recent")),
        _section(_mutes(cluster.mutes, now) if cluster.mutes is not None else _withheld(MUTES, "mutes")),
        _section(_top(cluster.top) if cluster.top is not None else _withheld(TOP, "top")),
    ]


def _withheld(heading: str, command: str) -> str:
    """A part the viewer may not see: which command shows it, and who may run that."""
    return f"*{heading}*\n_For those who may run `/netlog {command}`: operators (`access.permissions`)._"


def _settings(spec: LoggingSpec | str) -> str:
    if isinstance(spec, str):
        return f"*{SETTINGS}*\n:warning: {escape(spec)}"
    lines = [f"• {kind} `{spec.short(kind)}`: {meaning(spec, kind)}" for kind in ("deny", "allow")]
    return f"*{SETTINGS}*\n" + "\n".join(lines)


def _groups(groups: Sequence[Group]) -> str:
    if not groups:
        return f"*{GROUPS}*\nNone."
    ordered = sorted(groups, key=lambda g: g.last_seen, reverse=True)
    lines = [
        f"• {_labels(g)} · at least {plural(g.total, 'denied attempt')}, last {slack_time(g.last_seen)}"
        for g in ordered
    ]
    return f"*{GROUPS} ({len(groups)})*\n" + fit(lines, _more)


def _labels(group: Group) -> str:
    """The group's labels but the cluster, which the section is about already."""
    shown = [
        code(f"{name}={value}") if value else f"_{empty_label(name)}_"
        for name, value in group.labels
        if name != "cluster"
    ]
    return " ".join(shown) or code("whole cluster")


def _mutes(mutes: Sequence[Mute], now: datetime) -> str:
    if not mutes:
        return f"*{MUTES}*\nNone."
    lines = []
    for mute in mutes:
        left = format_duration(timedelta(seconds=int((mute.expires_at - now).total_seconds())))
        reason = f" ({escape(mute.reason)})" if mute.reason else ""
        lines.append(f"• #{mute.id} {code(mute.label)} by <@{escape(mute.created_by)}>, {left} left{reason}")
    return f"*{MUTES} ({len(mutes)})*\n" + fit(lines, _more)


def _top(top: Top) -> str:
    heading = f"*{TOP}*"
    if not top.rows:
        return f"{heading}\nNo denied attempts recorded."
    lines = [
        f"• {code(row.key)} · {plural(row.attempts, 'attempt')} ({row.share(top.total):.0%})"
        for row in top.rows
    ]
    return f"{heading} (at least {plural(top.total, 'denied attempt')})\n" + fit(lines, _more, top.more)


def _more(hidden: int) -> str | None:
    return f"_+{hidden:,} more_" if hidden else None


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
