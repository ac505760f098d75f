"""The `/netlog` grammar: every command form parses to the right object, `--cluster` anywhere, verbs in
any case, syntax errors raise `CommandError` naming the problem, `help_text`, `command_name`, and
(property-based) that no text makes `parse` raise anything but `CommandError`."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.commands import (
    MUTATING,
    Command,
    CommandError,
    Help,
    ListMutes,
    Mute,
    NamespaceLogging,
    RoutesTest,
    SetLogging,
    Status,
    Unmute,
    command_name,
    help_text,
    parse,
    parse_matchers,
)
from bot.core.routing import EVENT_FIELDS

VERBS = ("help", "status", "enable", "disable", "delegate", "ns-logging", "mute", "unmute", "mutes", "routes")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # help
        ("help", Help()),
        ("", Help()),
        ("   ", Help()),
        # status
        ("status", Status()),
        ("status --cluster prod-eu", Status("prod-eu")),
        ("status --cluster=prod-eu", Status("prod-eu")),
        # enable / disable
        ("enable allow", SetLogging("enable", "allow", delegate=False)),
        ("enable deny", SetLogging("enable", "deny", delegate=False)),
        ("enable allow --delegate", SetLogging("enable", "allow", delegate=True)),
        ("enable deny --delegate", SetLogging("enable", "deny", delegate=True)),
        ("enable --delegate deny", SetLogging("enable", "deny", delegate=True)),
        ("disable allow", SetLogging("disable", "allow", delegate=False)),
        ("disable deny", SetLogging("disable", "deny", delegate=False)),
        ("enable deny --cluster prod-eu", SetLogging("enable", "deny", False, "prod-eu")),
        ("disable allow --cluster=staging", SetLogging("disable", "allow", False, "staging")),
        # delegate
        ("delegate allow on", SetLogging("delegate", "allow", delegate=True)),
        ("delegate allow off", SetLogging("delegate", "allow", delegate=False)),
        ("delegate deny on", SetLogging("delegate", "deny", delegate=True)),
        ("delegate deny off", SetLogging("delegate", "deny", delegate=False)),
        ("delegate deny on --cluster prod-eu", SetLogging("delegate", "deny", True, "prod-eu")),
        # ns-logging
        ("ns-logging payments on", NamespaceLogging("payments", on=True)),
        ("ns-logging payments off", NamespaceLogging("payments", on=False)),
        ("ns-logging kube-system on --cluster=prod", NamespaceLogging("kube-system", True, "prod")),
        ("ns-logging a on", NamespaceLogging("a", on=True)),
        ("ns-logging 9-lives off", NamespaceLogging("9-lives", on=False)),
        # mute
        ("mute namespace=payments", Mute((("namespace", "payments"),))),
        (
            "mute namespace=payments dest_port=53 cluster=prod-*",
            Mute((("namespace", "payments"), ("dest_port", "53"), ("cluster", "prod-*"))),
        ),
        ("mute namespace=payments for 2h", Mute((("namespace", "payments"),), timedelta(hours=2))),
        ("mute dest_port=53 for 30m", Mute((("dest_port", "53"),), timedelta(minutes=30))),
        (
            "mute namespace=payments dest_port=53 for 2h -- known DNS issue, see INC-42",
            Mute(
                (("namespace", "payments"), ("dest_port", "53")),
                timedelta(hours=2),
                "known DNS issue, see INC-42",
            ),
        ),
        (
            "mute namespace=payments -- reason text with words",
            Mute((("namespace", "payments"),), None, "reason text with words"),
        ),
        # the reason is free text: quotes and `--` inside it are not parsed
        (
            'mute node=n1 -- it\'s "flaky" -- again',
            Mute((("node", "n1"),), None, 'it\'s "flaky" -- again'),
        ),
        ('mute source="pod a/b"', Mute((("source", "pod a/b"),))),
        ("mute namespace=a=b", Mute((("namespace", "a=b"),))),
        # unmute / mutes
        ("unmute 12", Unmute(12)),
        ("unmute #12", Unmute(12)),
        ("unmute 0", Unmute(0)),
        ("mutes", ListMutes()),
        # routes test
        ("routes test cluster=prod-eu", RoutesTest((("cluster", "prod-eu"),))),
        (
            "routes test cluster=prod-eu namespace=payments",
            RoutesTest((("cluster", "prod-eu"), ("namespace", "payments"))),
        ),
    ],
)
def test_parse(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "enable --cluster prod-eu deny --delegate",
        "enable deny --cluster prod-eu --delegate",
        "enable deny --delegate --cluster prod-eu",
        "enable deny --delegate --cluster=prod-eu",
        "enable --cluster=prod-eu --delegate deny",
        "--cluster prod-eu enable deny --delegate",
        "--cluster=prod-eu enable --delegate deny",
        "ENABLE DENY --DELEGATE --CLUSTER prod-eu",
    ],
)
def test_cluster_option_anywhere(text: str) -> None:
    assert parse(text) == SetLogging("enable", "deny", delegate=True, cluster="prod-eu")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("HELP", Help()),
        ("Help", Help()),
        ("STATUS", Status()),
        ("Enable deny", SetLogging("enable", "deny", delegate=False)),
        ("DISABLE allow", SetLogging("disable", "allow", delegate=False)),
        ("Delegate deny on", SetLogging("delegate", "deny", delegate=True)),
        ("NS-Logging payments on", NamespaceLogging("payments", on=True)),
        ("Mute namespace=payments", Mute((("namespace", "payments"),))),
        ("UNMUTE 3", Unmute(3)),
        ("Mutes", ListMutes()),
        ("Routes test cluster=x", RoutesTest((("cluster", "x"),))),
        ("enable Deny", SetLogging("enable", "deny", delegate=False)),
        ("delegate ALLOW On", SetLogging("delegate", "allow", delegate=True)),
        ("ns-logging payments OFF", NamespaceLogging("payments", on=False)),
        ("routes TEST cluster=x", RoutesTest((("cluster", "x"),))),
        ("--cluster prod status", Status("prod")),
        ("help --cluster prod", Help()),
        ("help --cluster", Help()),
        ("status --cluster prod --cluster=prod", Status("prod")),
        ("mute namespace=payments FOR 2h", Mute((("namespace", "payments"),), timedelta(hours=2))),
    ],
)
def test_keywords_are_case_insensitive_and_options_go_anywhere(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("frobnicate", "I don't know the command `frobnicate`"),
        ("enable maybe", "`maybe` is neither `allow` nor `deny`"),
        ("disable everything", "`everything` is neither `allow` nor `deny`"),
        ("delegate deny sideways", "`sideways` is neither `on` nor `off`"),
        ("delegate sometimes on", "`sometimes` is neither `allow` nor `deny`"),
        ("ns-logging payments maybe", "`maybe` is neither `on` nor `off`"),
        ("enable", "Usage: `/netlog enable allow|deny`"),
        ("enable allow deny", "Usage: `/netlog enable allow|deny`"),
        ("disable", "Usage: `/netlog disable allow|deny`"),
        ("delegate", "Usage: `/netlog delegate allow|deny on|off`"),
        ("delegate deny", "Usage: `/netlog delegate allow|deny on|off`"),
        ("delegate deny on --delegate", "Usage: `/netlog delegate allow|deny on|off`"),
        ("ns-logging", "Usage: `/netlog ns-logging NAMESPACE on|off`"),
        ("ns-logging payments", "Usage: `/netlog ns-logging NAMESPACE on|off`"),
        ("unmute", "Usage: `/netlog unmute ID`"),
        ("unmute 1 2", "Usage: `/netlog unmute ID`"),
        ("status prod-eu", "`status` takes no `prod-eu`"),
        ("status --delegate", "`status` takes no `--delegate`"),
        ("mutes all", "`mutes` takes no `all`"),
        ("disable deny --delegate", "`disable` turns delegation off too"),
        ("ns-logging Payments_NS on", "`Payments_NS` is not a Kubernetes namespace name"),
        ("ns-logging -payments on", "`-payments` is not a Kubernetes namespace name"),
        ("ns-logging payments- on", "`payments-` is not a Kubernetes namespace name"),
        ("ns-logging " + "a" * 64 + " on", "is not a Kubernetes namespace name"),
        ("ns-logging 'payments\n' on", "is not a Kubernetes namespace name"),
        ("mute namespace", "`namespace` is not a matcher"),
        ("mute namespace=", "`namespace=` is not a matcher"),
        ("mute =payments", "`=payments` is not a matcher"),
        ("routes test payments", "`payments` is not a matcher"),
        ("mute team=payments", "`team` is not a field I know"),
        ("routes test team=payments", "`team` is not a field I know"),
        ("mute", "Give at least one matcher"),
        ("mute for 2h", "Give at least one matcher"),
        ("mute -- just because", "Give at least one matcher"),
        ("routes test", "Give at least one matcher"),
        ("mute namespace=payments for", "duration"),
        ("mute namespace=payments for 3 weeks", "duration"),
        ("mute namespace=payments for 2h dest_port=53", "Write the duration last"),
        ("mute namespace=payments for 3w", "'3w' is not a duration"),
        # the user's text is quoted as written, not lower-cased
        ("mute namespace=payments for 2H", "'2H' is not a duration"),
        ("unmute abc", "`abc` is not a mute ID"),
        ("unmute #", "`#` is not a mute ID"),
        ("unmute -3", "`-3` is not a mute ID"),
        ("unmute ²", "`²` is not a mute ID"),
        ("unmute ١٢", "`١٢` is not a mute ID"),
        ("routes", "Did you mean `/netlog routes test MATCHERS`?"),
        ("routes cluster=prod", "Did you mean `/netlog routes test MATCHERS`?"),
        ("status --cluster", "`--cluster` needs a cluster name"),
        ("status --cluster=", "`--cluster` needs a cluster name"),
        ("enable deny --cluster", "`--cluster` needs a cluster name"),
        # an option is not a cluster name, whatever follows --cluster
        ("enable deny --cluster --delegate", "`--cluster` needs a cluster name"),
        ("--cluster --cluster prod status", "`--cluster` needs a cluster name"),
        ("--cluster prod-eu disable deny --cluster prod-us", "`prod-eu` or `prod-us`? Give `--cluster` once"),
        ("--cluster", "`--cluster` needs a cluster name"),
        ("mute namespace=payments --cluster prod", "write `cluster=NAME`"),
        ("--cluster prod mute namespace=payments", "write `cluster=NAME`"),
        ("unmute 3 --cluster prod", "`unmute` does not take `--cluster`"),
        ("mutes --cluster prod", "`mutes` does not take `--cluster`"),
        ("routes test cluster=x --cluster prod", "`routes` does not take `--cluster`"),
        ("status -- because", "Only `mute` takes a reason"),
        ("enable deny -- because", "Only `mute` takes a reason"),
        ("unmute 3 -- done", "Only `mute` takes a reason"),
        ("mute namespace='payments", "check the quotes"),
        ('status --cluster "prod', "check the quotes"),
    ],
)
def test_syntax_errors_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("name", EVENT_FIELDS)
def test_every_event_field_is_a_matcher_field(name: str) -> None:
    assert parse_matchers([f"{name}=x*"], required=True) == ((name, "x*"),)


def test_matchers_may_be_empty_when_not_required() -> None:
    assert parse_matchers([], required=False) == ()


def test_unknown_field_error_lists_the_known_fields() -> None:
    with pytest.raises(CommandError) as caught:
        parse_matchers(["team=x"], required=False)
    assert all(name in str(caught.value) for name in EVENT_FIELDS)


@pytest.mark.parametrize("verb", [verb for verb in VERBS if verb != "help"])
def test_help_mentions_every_verb(verb: str) -> None:
    assert f"/netlog {verb}" in help_text()


def test_help_lists_every_matcher_field() -> None:
    text = help_text()
    assert all(f"`{name}`" in text for name in EVENT_FIELDS)
    assert "{fields}" not in text


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (Help(), "help"),
        (Status(), "status"),
        (SetLogging("enable", "deny", delegate=False), "enable"),
        (SetLogging("disable", "allow", delegate=False), "disable"),
        (SetLogging("delegate", "deny", delegate=True), "delegate"),
        (NamespaceLogging("payments", on=True), "ns-logging"),
        (Mute((("namespace", "x"),)), "mute"),
        (Unmute(1), "unmute"),
        (ListMutes(), "mutes"),
        (RoutesTest((("cluster", "x"),)), "routes"),
    ],
)
def test_command_name(command: Command, name: str) -> None:
    assert command_name(command) == name
    assert name in VERBS


@pytest.mark.parametrize(
    ("command", "mutating"),
    [
        (Help(), False),
        (Status(), False),
        (SetLogging("enable", "deny", delegate=False), True),
        (NamespaceLogging("payments", on=True), True),
        (Mute((("namespace", "x"),)), True),
        (Unmute(1), True),
        (ListMutes(), False),
        (RoutesTest((("cluster", "x"),)), False),
    ],
)
def test_mutating(command: Command, mutating: bool) -> None:
    assert isinstance(command, MUTATING) is mutating


_WORDS = st.sampled_from(
    [
        *VERBS,
        *(f"{name}=x" for name in EVENT_FIELDS),
        "allow", "deny", "on", "off", "for", "2h", "0m", "--", "--cluster", "--cluster=", "--delegate",
        "test", "#", "#1", "12", "'", '"', "\\", "=", "²", "payments", "Payments_NS", "\n",
    ]
)  # fmt: skip


@given(st.text())
def test_parse_of_any_text_raises_only_command_error(text: str) -> None:
    with contextlib.suppress(CommandError):
        parse(text)


@given(st.lists(st.one_of(_WORDS, st.text(max_size=8)), max_size=8))
def test_parse_of_near_commands_raises_only_command_error(words: list[str]) -> None:
    with contextlib.suppress(CommandError):
        parse(" ".join(words))


def test_a_field_given_twice_is_refused_with_what_to_do_instead() -> None:
    with pytest.raises(CommandError) as caught:
        parse("mute namespace=a namespace=b for 1h")
    assert "`namespace` is given twice; an event has one namespace" in str(caught.value)
    assert "`namespace=pay*`" in str(caught.value)
