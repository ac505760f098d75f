"""Plain-text phrasing shared by every renderer, so the console and Slack say the same thing."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from bot.core.grouping import FlowSummary, Notification

STATE_WORDS = {"open": "active", "update": "active", "repeat": "still active", "resolve": "quiet"}


#: C0 and C1 control characters but newline and tab: log content must not drive the terminal
#: (`\x1b[2J` would clear it), so they are shown escaped.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` for a terminal: control characters shown as escapes (`\x1b`), everything else kept."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


#: What an empty group label means. The policed endpoint (or a side) has no namespace when it is
#: not a pod: a node (host traffic) or an address outside the cluster's pods.
EMPTY_LABELS = {
    "namespace": "no namespace (nodes, external addresses)",
    "src_namespace": "sources outside namespaces (nodes, external addresses)",
    "dest_namespace": "destinations outside namespaces (nodes, external addresses)",
    "dest_port": "no port",
}


def empty_label(name: str) -> str:
    """An empty group label in words: `no namespace (nodes, external addresses)`, `no node`."""
    return EMPTY_LABELS.get(name, f"no {name}")


def title(note: Notification) -> str:
    """`Denied connections — prod-eu / payments`: the group's labels, in group_by order."""
    where = " / ".join(value or empty_label(name) for name, value in note.labels)
    return f"Denied connections — {where}" if where else "Denied connections"


#: How a renderer writes a moment: the terminal `hhmm` (its lines say "UTC" once), Slack
#: `times.slack_time` (each reader's own zone, with a date).
When = Callable[[datetime], str]


def state(note: Notification) -> str:
    if note.kind == "resolve":
        return f"quiet since {hhmm(note.last_seen)} UTC"
    return STATE_WORDS[note.kind]


def totals(note: Notification, when: When | None = None) -> str:
    """Counts are lower bounds: GKE drops log lines past 500 per second per node."""
    flows = plural(note.flow_count, "flow")
    if note.other_count:
        flows = f"{note.flow_count:,}+ flows"
    first, last = (when or hhmm)(note.first_seen), (when or hhmm)(note.last_seen)
    return (
        f"at least {plural(note.total, 'denied attempt')}, {flows}, {plural(len(note.nodes), 'node')}, "
        f"first {first}, last {last}{'' if when else ' UTC'}"
    )


def flow_line(flow: FlowSummary, quote: Callable[[str], str] | None = None, when: When = hhmm) -> str:
    """One flow on one line, in the same words everywhere. Plain text separates its columns with
    two spaces; Slack passes `quote` (its code spans), which set the endpoints apart already, so
    single spaces and a comma are enough there."""
    key = flow.key
    source, destination = key.source, f"{key.destination}:{key.port_label}"
    if quote is None:
        gap, last = "  ", "  last"
    else:
        source, destination, gap, last = quote(source), quote(destination), " ", ", last"
    return f"{source} → {destination}{gap}{key.direction}{gap}×{flow.count:,}{last} {when(flow.last_seen)}"


def more_flows(hidden: int, other_count: int = 0) -> str | None:
    """`+3 more flows`; past the tracking cap, the attempts of flows not tracked one by one."""
    if other_count:
        return f"+{plural(hidden, 'more flow')} and {plural(other_count, 'attempt')} in flows not tracked"
    return f"+{plural(hidden, 'more flow')}" if hidden else None
