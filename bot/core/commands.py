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
recent [FILTERS] [since=1h] [limit=20] [source=history|logging] [share]
top [FILTERS] [since=24h] [by=namespace|flow|source|destination|node|port] [limit=10] [source=…] [share]
digest [since=24h] [channel=C]
digest now [channel=C]
explain FLOW [--cluster NAME]
propose FLOW [--cluster NAME]
proposals [--cluster NAME]
withdraw NAMESPACE/NAME [--cluster NAME]
   FILTERS: cluster=C ns=NS src=GLOB dst=GLOB port=N proto=P
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from bot.core.durations import format_duration, parse_duration
from bot.core.history import TOP_BY, FlowFilter, TopBy
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
• `/netlog recent [FILTERS] [since=1h] [limit=20]`: the latest denied flows, e.g. `/netlog recent ns=payments since=1h`
• `/netlog top [FILTERS] [since=24h] [by=namespace|flow|source|destination|node|port] [limit=10]`: biggest contributors and their change, e.g. `/netlog top by=source since=24h`
• `/netlog digest [since=24h] [channel=C]`: preview this channel's digest (or the one of everything) · `/netlog digest now`: post it here
• `/netlog explain FLOW [--cluster NAME]`: why a flow was denied (which policies isolate the pod), e.g. `/netlog explain checkout/web → payments/api:8080/tcp`
• `/netlog propose FLOW [--cluster NAME]`: the smallest NetworkPolicy that would allow it, verified · `/netlog proposals`: the policies the bot created · `/netlog withdraw NAMESPACE/NAME`: delete one
Filters: `cluster=C` `ns=NS` `src=GLOB` `dst=GLOB` `port=N` `proto=tcp|udp|icmp|unknown`; add `share` to post the answer in the channel, `source=logging` to ask Cloud Logging.
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


Source = Literal["auto", "history", "logging"]


@dataclass(frozen=True, slots=True)
class Recent:
    """`recent`: the latest denied flows matching `flow_filter` in the last `since`."""

    flow_filter: FlowFilter = field(default_factory=FlowFilter)
    since: timedelta = timedelta(hours=1)
    limit: int = 20
    source: Source = "auto"
    share: bool = False


@dataclass(frozen=True, slots=True)
class Top:
    """`top`: the biggest contributors `by` one key, against the previous period of the same length."""

    flow_filter: FlowFilter = field(default_factory=FlowFilter)
    since: timedelta = timedelta(hours=24)
    by: TopBy = "namespace"
    limit: int = 10
    source: Source = "auto"
    share: bool = False


@dataclass(frozen=True, slots=True)
class Digest:
    """`digest`: the digest of the last `since` (whole hours) for `channel` (None: the channel
    asked in), shown to the asker; with `now`, posted in that channel."""

    since: timedelta = timedelta(hours=24)
    channel: str | None = None
    now: bool = False


@dataclass(frozen=True, slots=True)
class Explain:
    """`explain FLOW`: why the flow (as an alert shows it) was denied."""

    flow: str
    cluster: str | None = None


@dataclass(frozen=True, slots=True)
class Propose:
    """`propose FLOW`: the minimal policy that would allow it; operators may apply it."""

    flow: str
    cluster: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyProposal:
    """What a proposal's Apply button carries: the flow, read and verified again on Apply, and the
    digest of what the card showed (Apply refuses to create anything else)."""

    flow: str
    shown: str = ""


@dataclass(frozen=True, slots=True)
class ListProposals:
    cluster: str | None = None


@dataclass(frozen=True, slots=True)
class Withdraw:
    namespace: str
    name: str
    cluster: str | None = None


Command = (
    Help
    | Status
    | SetLogging
    | NamespaceLogging
    | Mute
    | Unmute
    | ListMutes
    | RoutesTest
    | Recent
    | Top
    | Digest
    | Explain
    | Propose
    | ApplyProposal
    | ListProposals
    | Withdraw
)
MUTATING = (SetLogging, NamespaceLogging, Mute, Unmute, ApplyProposal, Withdraw)
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def help_text() -> str:
    return HELP.format(fields=", ".join(f"`{name}`" for name in EVENT_FIELDS))


def command_name(command: Command) -> str:
    """The name used for per-command permissions and the audit trail."""
    if isinstance(command, SetLogging):
        return command.action
    if isinstance(command, Digest):
        return "digest-now" if command.now else "digest"
    return {
        Help: "help",
        Status: "status",
        NamespaceLogging: "ns-logging",
        Mute: "mute",
        Unmute: "unmute",
        ListMutes: "mutes",
        RoutesTest: "routes",
        Recent: "recent",
        Top: "top",
        Explain: "explain",
        Propose: "propose",
        ApplyProposal: "apply-proposal",
        ListProposals: "proposals",
        Withdraw: "withdraw",
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
    if verb in ("recent", "top"):
        return parse_query(verb, rest, cluster)
    if verb in ("explain", "propose", "proposals", "withdraw"):
        return _policy_command(verb, rest, cluster)
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


def _policy_command(verb: str, rest: list[str], cluster: str | None) -> Command:
    """explain / propose a flow; list or withdraw the policies the bot created."""
    if verb == "proposals":
        _no_more(rest, "proposals")
        return ListProposals(cluster)
    if verb == "withdraw":
        (target,) = _take(rest, 1, "withdraw NAMESPACE/NAME")
        namespace, _, name = target.partition("/")
        if not _NAMESPACE.fullmatch(namespace) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
            raise CommandError(
                f"`{target}` is not `NAMESPACE/NAME`; `/netlog proposals` lists the bot's policies."
            )
        return Withdraw(namespace, name, cluster)
    if not rest:
        raise CommandError(
            "Which flow? Write it as the alert shows it: "
            f"`/netlog {verb} checkout/web → payments/api:8080/tcp`."
        )
    flow = " ".join(rest)
    return Explain(flow, cluster) if verb == "explain" else Propose(flow, cluster)


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
    if verb == "digest":
        return _digest(rest)
    if verb == "routes":
        if not rest or rest[0].lower() != "test":
            raise CommandError("Did you mean `/netlog routes test MATCHERS`?")
        return RoutesTest(parse_matchers(rest[1:], required=True))
    raise CommandError(f"I don't know the command `{verb}`.")


#: A digest reads every flow hour of its period and the one before: a week is plenty to ask for.
MAX_DIGEST_SINCE = timedelta(days=7)


def _digest(words: list[str]) -> Digest:
    since, channel, now = timedelta(hours=24), None, False
    for word in words:
        name, equals, value = word.partition("=")
        if word.lower() == "now":
            now = True
        elif equals and name == "since":
            since = _since(value)
            if since < timedelta(hours=1):
                raise CommandError("A digest covers whole hours: give `since=1h` or more, e.g. `since=24h`.")
            if since > MAX_DIGEST_SINCE:
                raise CommandError(
                    f"A digest covers at most {format_duration(MAX_DIGEST_SINCE)}; for longer, "
                    "`/netlog top since=30d` sums the history."
                )
        elif equals and name == "channel":
            channel = _channel(value)
        else:
            raise CommandError(
                f"`digest` does not take `{word}`: write `/netlog digest [since=24h] [channel=C…]` "
                "or `/netlog digest now`."
            )
    return Digest(since, channel, now)


def _channel(value: str) -> str:
    """A channel ID (`C0123ABCD`), or a `<#C0123ABCD|name>` mention as Slack sends a picked channel."""
    mention = re.fullmatch(r"<#([CG][A-Z0-9]{2,})(\|[^>]*)?>", value)
    if mention:
        return mention.group(1)
    if re.fullmatch(r"[CG][A-Z0-9]{2,}", value):
        return value
    raise CommandError(f"`channel={value}` is not a channel: pick one with `#` or give its ID (C…).")


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
    pairs: list[tuple[str, str]] = []
    for word in words:
        name, equals, pattern = word.partition("=")
        if not equals or not name or not pattern:
            raise CommandError(f"`{word}` is not a matcher; write `field=value`, e.g. `namespace=payments`.")
        if name not in EVENT_FIELDS:
            raise CommandError(f"`{name}` is not a field I know; use one of {', '.join(EVENT_FIELDS)}.")
        if any(name == seen for seen, _ in pairs):
            # Matchers all have to match: two values of one field would match nothing at all.
            raise CommandError(
                f"`{name}` is given twice; an event has one {name}. Use a glob for several, "
                f"e.g. `{name}=pay*`, or one command each."
            )
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


#: The longest window `recent` and `top` read (the history's default retention).
MAX_SINCE = timedelta(days=90)
MAX_LIMIT = 50
_PROTOCOLS = ("tcp", "udp", "icmp", "unknown")  # GKE logs SCTP and the rest as `unknown`
_WORDS = {
    "recent": "cluster ns src dst port proto since limit source share",
    "top": "cluster ns src dst port proto since by limit source share",
}
_ALIASES = {"namespace": "ns", "protocol": "proto", "dest": "dst", "destination": "dst", "source_ip": "src"}


def parse_query(verb: str, words: list[str], cluster: str | None = None) -> Recent | Top:
    """`recent …` / `top …` after the verb: `name=value` words in any order, and `share`.
    Shared by Slack and the terminal, so both take exactly the same words."""
    example = (
        "`/netlog recent ns=payments since=1h`"
        if verb == "recent"
        else "`/netlog top by=namespace since=24h`"
    )
    values: dict[str, str] = {}
    share = False
    for word in words:
        if word.lower() == "share":
            share = True
            continue
        name, equals, value = word.partition("=")
        name = _ALIASES.get(name.lower(), name.lower())
        if not equals or not value:
            raise CommandError(f"`{word}` is not a filter; write `name=value`, e.g. {example}.")
        if name not in _WORDS[verb].split():
            known = ", ".join(f"`{known}`" for known in _WORDS[verb].split())
            raise CommandError(f"`{verb}` has no `{name}`; it takes {known}. For example {example}.")
        if name in values and values[name] != value:
            raise CommandError(f"Which {name}: `{values[name]}` or `{value}`? Give it once.")
        values[name] = value
    if cluster is not None:
        if "cluster" in values and values["cluster"] != cluster:
            raise CommandError(f"Which cluster: `{values['cluster']}` or `{cluster}`? Give it once.")
        values["cluster"] = cluster
    flow_filter = FlowFilter(
        cluster=values.get("cluster"),
        namespace=_namespace(values["ns"]) if "ns" in values else None,
        src=_glob(values["src"], "src") if "src" in values else None,
        dst=_glob(values["dst"], "dst") if "dst" in values else None,
        port=_port(values["port"]) if "port" in values else None,
        protocol=_protocol(values["proto"]) if "proto" in values else None,
    )
    default_since, default_limit = (timedelta(hours=1), 20) if verb == "recent" else (timedelta(hours=24), 10)
    since = _since(values["since"]) if "since" in values else default_since
    limit = _limit(values["limit"]) if "limit" in values else default_limit
    source = _source(values.get("source", "auto"))
    if verb == "recent":
        return Recent(flow_filter, since, limit, source, share)
    return Top(flow_filter, since, _by(values.get("by", "namespace")), limit, source, share)


def _namespace(value: str) -> str:
    if not _NAMESPACE.fullmatch(value):
        raise CommandError(f"`{value}` is not a Kubernetes namespace name; e.g. `ns=payments`.")
    return value


def _glob(value: str, name: str) -> str:
    if "[" in value or "]" in value or "\\" in value:
        raise CommandError(
            f"`{name}` takes `*` and `?` wildcards only, e.g. `{name}=payments/*` or `{name}=10.0.0.?`."
        )
    return value


def _port(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 1 <= int(value) <= 65_535:
        raise CommandError(f"`port={value}` is not a port; give a number from 1 to 65535, e.g. `port=5432`.")
    return int(value)


def _protocol(value: str) -> str:
    if value.lower() not in _PROTOCOLS:
        raise CommandError(f"`proto={value}` is not a protocol GKE logs; use one of {', '.join(_PROTOCOLS)}.")
    return value.lower()


def _since(value: str) -> timedelta:
    try:
        since = parse_duration(value)
    except ValueError as error:
        raise CommandError(
            f"`since={value}` is not a duration: write a whole number and a unit, "
            "e.g. `since=30m`, `since=24h`, `since=7d`."
        ) from error
    if since <= timedelta(0):
        raise CommandError("`since` must be longer than zero, e.g. `since=1h`.")
    if since > MAX_SINCE:
        raise CommandError(f"`since` goes back at most {format_duration(MAX_SINCE)}; e.g. `since=7d`.")
    return since


def _limit(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,3}", value) or not 1 <= int(value) <= MAX_LIMIT:
        raise CommandError(f"`limit={value}`: give a number from 1 to {MAX_LIMIT}, e.g. `limit=20`.")
    return int(value)


def _source(value: str) -> Source:
    lowered = value.lower()
    if lowered in ("auto", "history", "logging"):
        return lowered  # type: ignore[return-value]
    raise CommandError(
        f"`source={value}`: use `source=history` (the bot's own) or `source=logging` (Cloud Logging)."
    )


def _by(value: str) -> TopBy:
    for name in TOP_BY:
        if value.lower() == name:
            return name
    raise CommandError(f"`by={value}`: use one of {', '.join(TOP_BY)}, e.g. `by=source`.")
