"""The `/netlog` grammar: text -> a command object, or a `CommandError` that says what was wrong.

help
status [--cluster NAME]
enable allow|deny [--delegate] [--cluster NAME]
disable allow|deny [--cluster NAME]
delegate allow|deny on|off [--cluster NAME]
ns-logging NAMESPACE on|off [--cluster NAME]
mute MATCHERS [for DURATION] [-- REASON]
unmute ID
mutes
routes test MATCHERS
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from bot.core.durations import parse_duration
from bot.core.routing import EVENT_FIELDS

Kind = Literal["allow", "deny"]
Matchers = tuple[tuple[str, str], ...]

HELP = """*`/netlog` commands*
• `/netlog status [--cluster NAME]`: logging settings, delegated namespaces, ingest rate, open alerts, mutes
• `/netlog enable deny [--delegate] [--cluster NAME]`: log denied connections (`--delegate`: only in annotated namespaces)
• `/netlog enable allow [--delegate] [--cluster NAME]`: log allowed connections (high volume without `--delegate`)
• `/netlog disable allow|deny [--cluster NAME]`: stop logging them
• `/netlog delegate allow|deny on|off [--cluster NAME]`: switch delegation while logging is on
• `/netlog ns-logging NAMESPACE on|off [--cluster NAME]`: annotate a namespace for delegated deny logging
• `/netlog mute MATCHERS [for DURATION] [-- reason]`: silence alerts, e.g. `/netlog mute namespace=payments dest_port=53 for 2h -- known DNS issue`
• `/netlog mutes`: active mutes · `/netlog unmute ID`: end one early
• `/netlog routes test MATCHERS`: where an event with these fields would be sent, e.g. `/netlog routes test cluster=prod-eu namespace=payments`
Matchers are `field=glob` pairs; fields: {fields}. Durations: `30m`, `4h`, `2d`."""  # noqa: E501


class CommandError(ValueError):
    """Bad syntax; `str(error)` says what was wrong, in a sentence."""


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Status:
    cluster: str | None = None


@dataclass(frozen=True, slots=True)
class SetLogging:
    """enable / disable / delegate on `spec.cluster.<kind>`."""

    action: Literal["enable", "disable", "delegate"]
    kind: Kind
    delegate: bool
    cluster: str | None = None


@dataclass(frozen=True, slots=True)
class NamespaceLogging:
    namespace: str
    on: bool
    cluster: str | None = None


@dataclass(frozen=True, slots=True)
class Mute:
    matchers: Matchers
    duration: timedelta | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Unmute:
    mute_id: int


@dataclass(frozen=True, slots=True)
class ListMutes:
    pass


@dataclass(frozen=True, slots=True)
class RoutesTest:
    matchers: Matchers


Command = Help | Status | SetLogging | NamespaceLogging | Mute | Unmute | ListMutes | RoutesTest
MUTATING = (SetLogging, NamespaceLogging, Mute, Unmute)
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def help_text() -> str:
    return HELP.format(fields=", ".join(f"`{name}`" for name in EVENT_FIELDS))


def command_name(command: Command) -> str:
    """The name used for per-command permissions and the audit trail."""
    if isinstance(command, SetLogging):
        return command.action
    return {
        Help: "help",
        Status: "status",
        NamespaceLogging: "ns-logging",
        Mute: "mute",
        Unmute: "unmute",
        ListMutes: "mutes",
        RoutesTest: "routes",
    }[type(command)]


def parse(text: str) -> Command:
    text, reason = _split_reason(text)
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise CommandError(f"I could not read that ({error}): check the quotes.") from None
    if not words or words[0].lower() == "help":
        return Help()  # whatever follows: someone asking for help gets it
    # `--cluster` may come anywhere, even before the verb, as people type it.
    cluster, words = _cluster_option(words)
    if not words:
        return Help()
    verb, rest = words[0].lower(), words[1:]
    if verb == "mute":
        if cluster:
            raise CommandError("`mute` matches clusters with a matcher: write `cluster=NAME` (globs work).")
        return _mute(rest, reason)
    if reason:
        raise CommandError("Only `mute` takes a reason after ` -- `.")
    if verb in ("status", "enable", "disable", "delegate", "ns-logging"):
        return _cluster_command(verb, rest, cluster)
    if cluster:
        raise CommandError(f"`{verb}` does not take `--cluster`.")
    return _store_command(verb, rest)


def _split_reason(text: str) -> tuple[str, str]:
    """`mute … -- REASON`: the text before ` -- ` and the reason after it."""
    if " -- " not in f" {text} ":
        return text, ""
    text, _, reason = f" {text} ".partition(" -- ")
    return text, reason.strip()


def _cluster_command(verb: str, rest: list[str], cluster: str | None) -> Command:
    """The commands about one cluster's NetworkLogging and namespaces (they take `--cluster`)."""
    if verb == "status":
        _no_more(rest, "status")
        return Status(cluster)
    if verb in ("enable", "disable"):
        return _enable_disable(verb, rest, cluster)
    if verb == "delegate":
        kind, state = _take(rest, 2, "delegate allow|deny on|off")
        return SetLogging("delegate", _kind(kind), _on_off(state), cluster)
    namespace, state = _take(rest, 2, "ns-logging NAMESPACE on|off")
    if not _NAMESPACE.fullmatch(namespace):
        raise CommandError(f"`{namespace}` is not a Kubernetes namespace name.")
    return NamespaceLogging(namespace, _on_off(state), cluster)


def _store_command(verb: str, rest: list[str]) -> Command:
    """The commands about the bot's own mutes and routes."""
    if verb == "unmute":
        (mute_id,) = _take(rest, 1, "unmute ID")
        number = re.fullmatch(r"#?([0-9]{1,18})", mute_id)  # ASCII digits only: int() refuses "²"
        if not number:
            raise CommandError(f"`{mute_id}` is not a mute ID; `/netlog mutes` lists them.")
        return Unmute(int(number.group(1)))
    if verb == "mutes":
        _no_more(rest, "mutes")
        return ListMutes()
    if verb == "routes":
        if not rest or rest[0].lower() != "test":
            raise CommandError("Did you mean `/netlog routes test MATCHERS`?")
        return RoutesTest(parse_matchers(rest[1:], required=True))
    raise CommandError(f"I don't know the command `{verb}`.")


def _cluster_option(words: list[str]) -> tuple[str | None, list[str]]:
    cluster, rest, index = None, [], 0
    while index < len(words):
        word = words[index]
        if word.lower() == "--cluster" or word.lower().startswith("--cluster="):
            value = (
                word.partition("=")[2]
                if "=" in word
                else (words[index + 1] if index + 1 < len(words) else "")
            )
            if not value or value.startswith("--"):
                raise CommandError("`--cluster` needs a cluster name, e.g. `--cluster prod-eu`.")
            if cluster is not None and value != cluster:
                raise CommandError(f"Which cluster: `{cluster}` or `{value}`? Give `--cluster` once.")
            cluster = value
            index += 1 if "=" in word else 2
            continue
        rest.append(word)
        index += 1
    return cluster, rest


def _enable_disable(verb: str, words: list[str], cluster: str | None) -> SetLogging:
    delegate = any(w.lower() == "--delegate" for w in words)
    words = [w for w in words if w.lower() != "--delegate"]
    if delegate and verb == "disable":
        raise CommandError("`disable` turns delegation off too; it takes no `--delegate`.")
    (kind,) = _take(words, 1, f"{verb} allow|deny")
    return SetLogging("enable" if verb == "enable" else "disable", _kind(kind), delegate, cluster)


def _mute(words: list[str], reason: str) -> Mute:
    duration = None
    lowered = [word.lower() for word in words]
    if "for" in lowered:
        at = lowered.index("for")
        if at + 2 != len(words):
            raise CommandError("Write the duration last: `/netlog mute namespace=payments for 2h -- reason`.")
        try:
            duration = parse_duration(words[at + 1])
        except ValueError as error:
            message = str(error)
            raise CommandError(message[:1].upper() + message[1:] + ".") from None
        words = words[:at]
    return Mute(parse_matchers(words, required=True), duration, reason)


def parse_matchers(words: list[str], *, required: bool) -> Matchers:
    pairs = []
    for word in words:
        name, equals, pattern = word.partition("=")
        if not equals or not name or not pattern:
            raise CommandError(f"`{word}` is not a matcher; write `field=value`, e.g. `namespace=payments`.")
        if name not in EVENT_FIELDS:
            raise CommandError(f"`{name}` is not a field I know; use one of {', '.join(EVENT_FIELDS)}.")
        pairs.append((name, pattern))
    if required and not pairs:
        raise CommandError("Give at least one matcher, e.g. `namespace=payments`.")
    return tuple(pairs)


def _take(words: list[str], count: int, usage: str) -> list[str]:
    if len(words) != count:
        raise CommandError(f"Usage: `/netlog {usage}`.")
    return words


def _no_more(words: list[str], usage: str) -> None:
    if words:
        raise CommandError(f"`{usage}` takes no `{' '.join(words)}`.")


def _kind(word: str) -> Kind:
    if word.lower() == "allow":
        return "allow"
    if word.lower() == "deny":
        return "deny"
    raise CommandError(f"`{word}` is neither `allow` nor `deny`.")


def _on_off(word: str) -> bool:
    if word.lower() in ("on", "off"):
        return word.lower() == "on"
    raise CommandError(f"`{word}` is neither `on` nor `off`.")
