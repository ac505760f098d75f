"""Audit-channel lines: each entry as one sentence a person reads at a glance ("<@U1> turned on deny
logging on cluster `prod-eu`: now `log=true, delegate=false`, was `log=false, delegate=false`"),
not the record's fields.

The store keeps the structured entry; this reads it. `before`/`after` and `detail` are written by
the services in known shapes (a NetworkLogging spec's `short`, a namespace's annotation, a mute's
label, the command as typed, a Mute button's group key); anything else is shown as it is. Every
dynamic part is escaped: user-typed reasons and cluster names must not ping or format.
"""

from __future__ import annotations

import re

from bot.core.audit import AuditEntry
from bot.core.grouping import GroupKey
from bot.render.blocks import SECTION_LIMIT, clip, code, escape
from bot.render.replies import Reply

ICONS = {"applied": ":white_check_mark:", "refused": ":no_entry:", "failed": ":x:"}
#: What a NetworkLogging change did, in words.
DONE = {
    "enable": "turned on",
    "disable": "turned off",
    "delegate": "delegated to annotated namespaces",
}
#: The detail `/netlog digest now` writes (see `DigestCommands`): its channel is shown as a link.
_DIGEST_NOW = re.compile(r"digest of (?P<span>[^<>]+) posted in <#(?P<channel>[A-Z0-9]+)>")
#: What a refused or failed action tried to do, when its detail is not the command as typed.
ATTEMPTS = {"apply": "apply a change from a confirmation card", "digest-now": "post a digest now"}


def audit_message(entry: AuditEntry) -> Reply:
    """Channel-visible: who did what where, what it was before, and how it ended, in one sentence."""
    icon = ICONS.get(entry.result, "")
    text = clip(f"{icon} {audit_sentence(entry)}".strip(), SECTION_LIMIT)
    section = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    return Reply(text=text, blocks=[section], response_type="in_channel")


def audit_sentence(entry: AuditEntry) -> str:
    who = f"<@{escape(entry.user_id)}>"
    if entry.result == "refused":
        return f"{who} tried to {_attempt(entry)}{_on(entry)}: refused, not an operator."
    if entry.result == "failed":
        return f"{who} tried to {_attempt(entry)}{_on(entry)}: it failed ({escape(entry.detail)})."
    return f"{who} {_done(entry)}"


def _on(entry: AuditEntry) -> str:
    return f" on cluster {code(entry.cluster)}" if entry.cluster else ""


def _attempt(entry: AuditEntry) -> str:
    detail = entry.detail
    if detail.startswith("button on "):
        return f"mute {_alert(detail.removeprefix('button on '))} with its Mute button"
    if detail.startswith("/netlog "):
        return f"run {code(detail)}"
    return ATTEMPTS.get(entry.action, f"run {code('/netlog ' + entry.action)}")


def _alert(group_key: str) -> str:
    try:
        labels = GroupKey.decode(group_key).labels
    except ValueError:
        return "an alert"
    shown = " ".join(code(f"{name}={value}") for name, value in labels)
    return f"the alert {shown}" if shown else "an alert"


def _done(entry: AuditEntry) -> str:
    before, after, detail = entry.before or "", entry.after or "", entry.detail
    by = f" ({code(detail)})" if detail.startswith("/netlog ") else ""
    if entry.action in DONE and after:
        kind, _, spec = after.partition(": ")
        was = before.partition(": ")[2] or before
        return (
            f"{DONE[entry.action]} {escape(kind)} logging{_on(entry)}: now {code(spec)}, "
            f"was {code(was or 'unknown')}{by}."
        )
    if entry.action == "ns-logging" and after:
        namespace, _, value = after.partition(": ")
        on = value.endswith("=true")
        verb = "annotated namespace" if on else "removed the deny-logging annotation from namespace"
        return f"{verb} {code(namespace)}{_on(entry)}{' for deny logging' if on else ''}{by}."
    if entry.action == "mute" and after:
        reason = f" Reason: {escape(detail)}." if detail else ""
        return f"muted {_mute(after)}.{reason}"
    if entry.action == "unmute":
        return f"ended the mute {code(before or '?')} early{by}."
    if entry.action == "digest-now":
        match = _DIGEST_NOW.fullmatch(detail)
        if match:
            return f"posted the digest of {escape(match['span'])} in <#{match['channel']}> now."
        return f"posted a digest now: {escape(detail)}."
    changed = f": {code(before or '-')} → {code(after or '-')}" if before or after else ""
    return f"ran {code(entry.action)}{_on(entry)}{changed}{by or (' ' + escape(detail) if detail else '')}."


def _mute(after: str) -> str:
    """`#3 cluster=prod namespace=payments for 1h` (see `Mutes.mute`) as `#3 `…` for 1h`."""
    ident, _, rest = after.partition(" ")
    label, sep, duration = rest.rpartition(" for ")
    if not (ident.startswith("#") and sep):
        return code(after)
    return f"{escape(ident)} {code(label)} for {escape(duration)}"
