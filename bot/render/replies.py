"""Replies to `/netlog`: ephemeral answers, confirmation cards and status (audit-channel lines are
`bot.render.audit`).
User-typed text (matchers, reasons, names) is escaped like log text: it must not ping or format."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.core import commands as cmd
from bot.core.durations import format_duration
from bot.core.mutes import Mute
from bot.core.netlogging import DENY_ANNOTATION, LoggingSpec, Plan, meaning
from bot.core.routing import RouteMatch
from bot.render import ids
from bot.render.blocks import SECTION_LIMIT, clip, code, escape
from bot.render.times import slack_time

Block = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    blocks: list[Block] = field(default_factory=list)
    response_type: str = "ephemeral"

    def as_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "text": self.text,
            "response_type": self.response_type,
            "replace_original": False,
        }
        if self.blocks:
            kwargs["blocks"] = self.blocks
        return kwargs


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}


def _reply(text: str) -> Reply:
    return Reply(text=text, blocks=[_section(text)])


def note(text: str) -> Reply:
    return _reply(text)


def problem(text: str) -> Reply:
    """`text` may quote what a user typed or what an API server said: escaped, so it cannot ping."""
    return _reply(f":warning: {escape(text)}")


def help_reply(text: str) -> Reply:
    return _reply(text)


def syntax_error(message: str, help_text: str) -> Reply:
    return Reply(
        text=message, blocks=[_section(f":warning: {message}"), {"type": "divider"}, _section(help_text)]
    )


def refused(command: str, access: Any) -> Reply:
    who = [f"<@{user}>" for user in access.operators] + [
        f"<!subteam^{group}>" for group in access.operator_groups
    ]
    whom = ", ".join(who) if who else "nobody yet (add `access.operators` to the bot's config)"
    return _reply(f":no_entry: Only operators may run `{command}`: {whom}. The attempt was recorded.")


@dataclass(frozen=True, slots=True)
class Card:
    """A confirmation card: what would change and what it means; buttons added with an ID."""

    title: str
    lines: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    #: Sections of their own after the lines (a manifest each): each within Slack's 3,000 characters.
    sections: tuple[str, ...] = ()

    def with_buttons(self, change_id: str) -> Reply:
        blocks: list[Block] = [_section(f"*{self.title}*\n" + "\n".join(self.lines))]
        blocks.extend(_section(text) for text in self.sections)
        blocks.extend(_section(f":warning: {w}") for w in self.warnings)
        blocks.append(
            {
                "type": "actions",
                "block_id": "netlog_confirm",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ids.APPLY,
                        "style": "primary",
                        "value": change_id,
                        "text": {"type": "plain_text", "text": "Apply"},
                    },
                    {
                        "type": "button",
                        "action_id": ids.CANCEL,
                        "value": change_id,
                        "text": {"type": "plain_text", "text": "Cancel"},
                    },
                ],
            }
        )
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "This card expires in 10 minutes."}]}
        )
        return Reply(text=self.title, blocks=blocks)


def logging_card(cluster: str, kind: str, change: Plan) -> Card:
    lines: tuple[str, ...] = (
        f"Now: `{change.before.short(kind)}`: {meaning(change.before, kind)}",
        f"New: `{change.after.short(kind)}`: {meaning(change.after, kind)}",
    )
    if change.changes_nothing:
        lines = (*lines, "_This is already the current setting; applying changes nothing._")
    return Card(f"Change {kind} logging on {escape(cluster)}?", lines, change.warnings)


def namespace_card(cluster: str, command: cmd.NamespaceLogging, annotated: bool) -> Card:
    state = "annotated" if annotated else "not annotated"
    verb = "Annotate" if command.on else "Remove the annotation from"
    return Card(
        f"{verb} namespace {code(command.namespace)} on {escape(cluster)}?",
        (
            f'Now: {state} (`{DENY_ANNOTATION}: "true"`).',
            "With deny logging in delegate mode, only annotated namespaces have their denies logged.",
        ),
    )


def mute_card(command: cmd.Mute, duration: timedelta, now: datetime) -> Card:
    matchers = " ".join(code(f"{k}={v}") for k, v in command.matchers)
    until = slack_time(now + duration)
    lines = [f"Mute alerts matching {matchers} for {format_duration(duration)} (until {until})."]
    if command.reason:
        lines.append(f"Reason: {escape(command.reason)}")
    lines.append("Muted denies are still stored and counted; they alert nobody.")
    return Card("Create a mute?", tuple(lines))


def unmute_card(mute_id: int) -> Card:
    return Card(f"End mute #{mute_id} now?", ("Alerts for what it matched resume.",))


def logging_done(cluster: str, kind: str, after: LoggingSpec, resource_version: str) -> Reply:
    return _reply(
        f":white_check_mark: {escape(cluster)} now has `{after.short(kind)}` "
        f"(resourceVersion {resource_version}): "
        f"{meaning(after, kind)} Waiting for the nodes to apply it…"
    )


def namespace_done(cluster: str, namespace: str, annotated: bool) -> Reply:
    state = "now annotated for deny logging" if annotated else "no longer annotated for deny logging"
    return _reply(f":white_check_mark: Namespace {code(namespace)} on {escape(cluster)} is {state}.")


def nodes_applied(cluster: str, resource_version: str, nodes: int) -> Reply:
    if nodes:
        return _reply(
            f":white_check_mark: {nodes} node(s) of {escape(cluster)} applied "
            f"resourceVersion {resource_version}."
        )
    return _reply(
        f"No node of {escape(cluster)} has reported resourceVersion {resource_version} yet; "
        "`/netlog status` shows the setting."
    )


def mutes(active: Sequence[Mute], now: datetime) -> Reply:
    if not active:
        return _reply("No active mutes.")
    lines = [f"*{len(active)} active mute(s)*"]
    for mute in active:
        left = format_duration(timedelta(seconds=int((mute.expires_at - now).total_seconds())))
        reason = f" ({escape(mute.reason)})" if mute.reason else ""
        lines.append(f"• #{mute.id} {code(mute.label)} by <@{escape(mute.created_by)}>, {left} left{reason}")
    return _reply("\n".join(lines))


def routes(fields: dict[str, str], matches: Iterable[RouteMatch], configured: Sequence[Any]) -> Reply:
    shown = " ".join(code(f"{k}={v}") for k, v in fields.items())
    lines = [f"An event with {shown} goes to:"]
    for match in matches:
        if match.route is None:
            lines.append(f"• {escape(match.channel)}: the default channel (no route matched)")
        else:
            route = configured[match.route]
            rule = " ".join(code(f"{k}={v}") for k, v in route.match.items())
            cont = ", continue" if route.continue_ else ""
            lines.append(f"• {escape(match.channel)}: route {match.route + 1} ({rule}{cont})")
    return _reply("\n".join(lines))


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    name: str
    spec: LoggingSpec | str
    delegated: list[str] | str
    newest: datetime | None
    per_minute: float
    open_groups: int


def status(
    clusters: Sequence[ClusterStatus],
    active: Sequence[Mute],
    rejects: int,
    now: datetime,
    recent_rejects: Mapping[str, int] | None = None,
) -> Reply:
    """`recent_rejects`: the last hour's rejects by reason, which a misrouted sink fills."""
    blocks: list[Block] = []
    for item in clusters:
        lines = [f"*{escape(item.name)}*"]
        if isinstance(item.spec, str):
            lines.append(f":warning: {escape(item.spec)}")
        else:
            lines.append(f"• deny `{item.spec.short('deny')}`: {meaning(item.spec, 'deny')}")
            lines.append(f"• allow `{item.spec.short('allow')}`: {meaning(item.spec, 'allow')}")
        if isinstance(item.delegated, list):
            names = ", ".join(code(n) for n in item.delegated) or "none"
            lines.append(f"• namespaces annotated for deny logging: {names}")
        seen = slack_time(item.newest) if item.newest else "never"
        lines.append(f"• last entry: {seen}; {item.per_minute:.1f} entries/min over the last hour")
        lines.append(f"• open alert groups: {item.open_groups}")
        blocks.append(_section("\n".join(lines)))
    if not clusters:
        blocks.append(_section("No clusters are configured (`clusters:` in the config)."))
    blocks.append(_section(f"Active mutes: {len(active)} · rejected messages kept: {rejects:,}"))
    if recent_rejects:
        reasons = ", ".join(f"{code(reason)} ×{n:,}" for reason, n in sorted(recent_rejects.items()))
        blocks.append(
            _section(
                f":warning: Rejected in the last hour: {reasons}. `netlog-bot rejects` shows them "
                "with what they held."
            )
        )
    return Reply(text="netlog status", blocks=blocks[:50])
