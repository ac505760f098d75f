"""The digest, for Slack and for the terminal: one phrasing, two markups (as `recent` and `top`).

Sections in the order a reader scans them: the headline (how much, against the previous period
and the daily average, or "quiet" said plainly), new flows, top flows, noisiest namespaces and
sources, alert groups and mutes, ingestion health, the clusters' logging settings. Each section
that reads denies links to Logs Explorer with the period's filter when the project is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.digest import Digest, DigestFlow, Share
from bot.core.history import FlowFilter
from bot.core.logquery import history_url
from bot.render.blocks import HEADER_LIMIT, LOWER_BOUND_NOTE, SECTION_LIMIT, clip, escape
from bot.render.history import PLAIN, SLACK, Markup, chunks, section
from bot.render.replies import Block
from bot.render.text import plural

#: What the chart upload is called in Slack and in files written by `netlog-bot digest --chart`.
CHART_TITLE = "Denied attempts per hour"


def digest_title(digest: Digest, zone: ZoneInfo | None = None) -> str:
    zone = zone or ZoneInfo("UTC")
    start, end = digest.period.start.astimezone(zone), digest.period.end.astimezone(zone)
    span = (
        f"{start:%a %d %b %H:%M}–{end:%H:%M}"
        if end - start <= timedelta(days=1) and start.date() == (end - timedelta(microseconds=1)).date()
        else f"{start:%a %d %b %H:%M} – {end:%a %d %b %H:%M}"
    )
    late = " (late)" if digest.late else ""
    return f"Network policy digest{late} — {span} {_zone_name(zone, end)}"


def digest_text(digest: Digest, project: str | None = None, zone: ZoneInfo | None = None) -> str:
    """The digest as the terminal prints it."""
    where = f"#{digest.channel}" if digest.scoped else "all channels"
    lines = [f"{digest_title(digest, zone)} · {where}", ""]
    for title, body in _sections(digest, PLAIN, project):
        lines.extend([title, *body, ""])
    lines.append(LOWER_BOUND_NOTE)
    return "\n".join(lines) + "\n"


def digest_blocks(digest: Digest, project: str | None = None, zone: ZoneInfo | None = None) -> list[Block]:
    """The digest as Slack blocks: a header, a section per part (split at 3,000 characters), the
    lower-bound note; never more than Slack's 50 blocks."""
    title = clip(digest_title(digest, zone), HEADER_LIMIT)
    blocks: list[Block] = [{"type": "header", "text": {"type": "plain_text", "text": title}}]
    blocks.append(section(_scope(digest)))
    for title, body in _sections(digest, SLACK, project):
        for n, chunk in enumerate(chunks(body or [""])):
            blocks.append(section(f"*{title}*\n{chunk}" if n == 0 else chunk))
    blocks = blocks[:49]
    note = {"type": "mrkdwn", "text": clip(LOWER_BOUND_NOTE, SECTION_LIMIT)}
    blocks.append({"type": "context", "elements": [note]})
    return blocks


def digest_summary(digest: Digest) -> str:
    """The notification text of the Slack message (what a phone shows)."""
    if digest.quiet:
        return f"Network policy digest: quiet — no denied attempts. {_headline_health(digest)}".strip()
    return (
        f"Network policy digest: at least {plural(digest.attempts, 'denied attempt')} in "
        f"{plural(digest.flow_count, 'flow')}, {digest.new_flow_count:,} new"
    )


def _scope(digest: Digest) -> str:
    if digest.scoped and digest.channel:
        return f"The denies routing sends to <#{escape(digest.channel)}>."
    return "Every deny, whatever channel routing sends it to."


def _sections(digest: Digest, markup: Markup, project: str | None) -> list[tuple[str, list[str]]]:
    link = _linker(digest, markup, project)
    parts: list[tuple[str, list[str]]] = [("Summary", _headline(digest, markup, link))]
    if not digest.quiet:
        parts.append(("New flows", _new(digest, markup, link)))
        parts.append(("Top flows", [_flow(flow, markup, link) for flow in digest.top_flows]))
        parts.append(("Noisiest namespaces", _shares(digest.namespaces, markup, link, "namespace")))
        parts.append(("Noisiest sources", _shares(digest.sources, markup, link, "source")))
    parts.append(("Alerts and mutes", _alerts(digest, markup)))
    parts.append(("Ingestion", _health(digest, markup)))
    if digest.clusters:
        parts.append(
            ("Clusters", [f"• {markup.code(name)}: {markup.text(text)}" for name, text in digest.clusters])
        )
    if digest.notes:
        parts.append(("Notes", [markup.text(note) for note in digest.notes]))
    return parts


def _headline(digest: Digest, markup: Markup, link: _Link) -> list[str]:
    hours = int(digest.period.length / timedelta(hours=1))
    if digest.quiet:
        lines = [f"Quiet: no denied attempts in these {plural(hours, 'hour')}."]
        if digest.health.silent_hours:
            lines.append(_headline_health(digest))
        return lines
    muted = f", {digest.muted_attempts:,} of them muted" if digest.muted_attempts else ""
    lines = [
        f"At least {plural(digest.attempts, 'denied attempt')} in {plural(digest.flow_count, 'flow')}"
        f" ({plural(digest.new_flow_count, 'new flow')}){muted}."
    ]
    comparisons = []
    if digest.previous_attempts is not None:
        change = _change(digest.period_change, digest.previous_attempts)
        comparisons.append(f"{change} on the previous {plural(hours, 'hour')} ({digest.previous_attempts:,})")
    if digest.daily_average is not None:
        days = "day" if digest.average_days == 1 else f"{digest.average_days} days"
        change = _change(digest.average_change, digest.daily_average)
        comparisons.append(
            f"{change} on the daily average of the {days} before ({round(digest.daily_average):,}/day)"
        )
    if comparisons:
        lines.append("; ".join(comparisons).capitalize() + ".")
    else:
        lines.append("Nothing to compare with yet: the flow history does not reach back before this period.")
    url = link(FlowFilter())
    if url:
        lines.append(url)
    return lines


def _headline_health(digest: Digest) -> str:
    silent = len(digest.health.silent_hours)
    if not silent:
        return ""
    hours = int(digest.period.length / timedelta(hours=1))
    if silent == hours:
        return (
            "No log entries arrived at all in this period: a quiet cluster and a broken sink look the "
            "same: check the Logging sink's filter and the Pub/Sub subscription."
        )
    return f"No log entries at all in {plural(silent, 'hour')} of {hours} (see Ingestion)."


def _change(change: float | None, before: float) -> str:
    if change is None:
        return "new" if before == 0 else "no change"
    if abs(change) < 0.005:
        return "about the same as"
    arrow = "up" if change > 0 else "down"
    return f"{arrow} {abs(change):.0%}"


def _new(digest: Digest, markup: Markup, link: _Link) -> list[str]:
    if not digest.new_flows:
        return ["None: every flow denied in this period was denied before."]
    lines = [
        f"{_flow(flow, markup, link, f'first seen {markup.time(flow.first_seen)}')}"
        for flow in digest.new_flows
    ]
    if digest.new_flow_count > len(digest.new_flows):
        lines.append(f"+{digest.new_flow_count - len(digest.new_flows):,} more new flows.")
    return lines


def _flow(flow: DigestFlow, markup: Markup, link: _Link, seen: str = "") -> str:
    cluster = f"{markup.code(flow.cluster)} " if flow.cluster else ""
    line = (
        f"• {cluster}{markup.code(flow.source)} → {markup.code(flow.destination)} :{flow.port_label}, "
        f"{flow.direction} · {plural(flow.attempts, 'attempt')}"
    )
    if seen:
        line += f" · {seen}"
    if markup is not PLAIN:  # a link per flow in Slack, where it is a word
        flow_filter = FlowFilter(
            cluster=flow.cluster or None,
            src=flow.source,
            dst=flow.destination,
            port=flow.dest_port or 0,
            protocol=flow.protocol,
        )
        if url := link(flow_filter):
            line += f" · {url}"
    return line


def _shares(shares: Sequence[Share], markup: Markup, link: _Link, by: str) -> list[str]:
    lines = []
    for n, share in enumerate(shares, start=1):
        # A link per row in Slack, where it is a word; the terminal prints the section's link only.
        url = "" if markup is PLAIN else link(_share_filter(by, share.name))
        where = f" · {url}" if url else ""
        lines.append(f"{n}. {markup.code(share.name)} — {share.attempts:,} ({share.share:.0%}){where}")
    return lines


def _share_filter(by: str, name: str) -> FlowFilter:
    return FlowFilter(namespace=name) if by == "namespace" else FlowFilter(src=name)


def _alerts(digest: Digest, markup: Markup) -> list[str]:
    lines = [
        f"{plural(digest.alerts_opened, 'alert group')} opened, {digest.alerts_resolved:,} resolved.",
    ]
    if digest.muted_attempts:
        share = digest.muted_attempts / digest.attempts if digest.attempts else 0
        lines.append(f"Muted: {plural(digest.muted_attempts, 'attempt')} ({share:.0%} of all).")
    for mute in digest.mutes_expiring:
        lines.append(
            f"• mute {markup.code(mute.label)} by {markup.text(mute.created_by)} ends "
            f"{markup.time(mute.expires_at)}"
        )
    return lines


def _health(digest: Digest, markup: Markup) -> list[str]:
    health = digest.health
    lines = []
    if health.silent_hours:
        silent = plural(len(health.silent_hours), "hour")
        lines.append(f"No entries at all in {silent}: {_hours(health.silent_hours)}.")
    else:
        lines.append("Entries arrived in every hour.")
    if health.rejects:
        rejected = ", ".join(f"{markup.code(code)} ×{count:,}" for code, count in health.rejects)
        total = sum(count for _, count in health.rejects)
        lines.append(f"{plural(total, 'message')} rejected: {rejected}, kept in the store for inspection.")
    else:
        lines.append("No messages rejected.")
    if health.lag is not None:
        lines.append(f"Entries arrived typically {_duration(health.lag)} after they were logged.")
    if health.capped:
        peaks: dict[tuple[str, str], int] = {}
        for cap in health.capped:
            peaks[(cap.cluster, cap.node)] = max(peaks.get((cap.cluster, cap.node), 0), cap.peak)
        nodes = ", ".join(
            f"{markup.code(node)}{f' ({markup.code(cluster)})' if cluster else ''}" for cluster, node in peaks
        )
        lines.append(
            f"{plural(len(peaks), 'node')} hit GKE's 500 lines/s cap, so lines past it were dropped and "
            f"the counts above are short: {nodes}."
        )
    return lines


def _hours(hours: Sequence[datetime]) -> str:
    """Runs of consecutive hours: `03:00-05:00, 09:00`."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in hours:
        if runs and hour - runs[-1][1] == timedelta(hours=1):
            runs[-1] = (runs[-1][0], hour)
        else:
            runs.append((hour, hour))
    shown = [
        f"{first:%H:%M}" if first == last else f"{first:%H:%M}–{last + timedelta(hours=1):%H:%M}"
        for first, last in runs[:8]
    ]
    more = f" and {len(runs) - 8} more" if len(runs) > 8 else ""
    return ", ".join(shown) + " UTC" + more


def _duration(delay: timedelta) -> str:
    seconds = max(0, int(delay.total_seconds()))
    if seconds < 120:
        return plural(seconds, "second")
    if seconds < 7200:
        return plural(seconds // 60, "minute")
    return plural(seconds // 3600, "hour")


def _zone_name(zone: ZoneInfo, moment: datetime) -> str:
    return moment.astimezone(zone).tzname() or str(zone)


class _Link:
    def __init__(self, digest: Digest, markup: Markup, project: str | None) -> None:
        self.digest, self.markup, self.project = digest, markup, project

    def __call__(self, flow_filter: FlowFilter) -> str:
        if not self.project:
            return ""
        period = self.digest.period
        url = history_url(self.project, flow_filter, period.start, period.end)
        return self.markup.link(url, "Logs Explorer")


def _linker(digest: Digest, markup: Markup, project: str | None) -> _Link:
    return _Link(digest, markup, project)
