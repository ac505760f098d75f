"""The `NetworkLogging` resource: `LoggingSpec.from_object` on the real object shape, `plan` (the exact
merge patch, the spec after it, warnings, refusals; never `log: false` with `delegate: true`, checked over
every before-spec and command), `changes_nothing`, and the `meaning` sentence of every state."""

from __future__ import annotations

import itertools
from typing import Any, Literal

import pytest

from bot.core.commands import Kind, SetLogging
from bot.core.netlogging import ALLOW_ANNOTATION, DENY_ANNOTATION, LoggingSpec, Plan, Refused, meaning, plan

#: As `kubectl get networklogging default -o json` returns it on a Dataplane V2 cluster.
REAL_OBJECT: dict[str, Any] = {
    "apiVersion": "networking.gke.io/v1alpha1",
    "kind": "NetworkLogging",
    "metadata": {
        "name": "default",
        "resourceVersion": "12345",
        "uid": "0c1d2e3f-0000-4000-8000-000000000000",
        "generation": 3,
        "creationTimestamp": "2026-01-01T00:00:00Z",
    },
    "spec": {
        "cluster": {
            "allow": {"log": False, "delegate": False},
            "deny": {"log": True, "delegate": True},
        }
    },
}

Action = Literal["enable", "disable", "delegate"]
ALL_SPECS = [LoggingSpec(*flags) for flags in itertools.product((False, True), repeat=4)]
ACTIONS: tuple[Action, ...] = ("enable", "disable", "delegate")
KINDS: tuple[Kind, ...] = ("allow", "deny")
ALL_COMMANDS = [
    SetLogging(action, kind, delegate)
    for action, kind, delegate in itertools.product(ACTIONS, KINDS, (False, True))
    if not (action == "disable" and delegate)  # the parser refuses `disable --delegate`
]

VOLUME = "log volume"
NS_LOGGING = "/netlog ns-logging NAMESPACE on"


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (REAL_OBJECT, LoggingSpec(allow_log=False, allow_delegate=False, deny_log=True, deny_delegate=True)),
        (None, LoggingSpec()),
        ({}, LoggingSpec()),
        ({"spec": None}, LoggingSpec()),
        ({"spec": {}}, LoggingSpec()),
        ({"spec": {"cluster": None}}, LoggingSpec()),
        ({"spec": {"cluster": {"deny": {"log": True}}}}, LoggingSpec(deny_log=True)),
        ({"spec": {"cluster": {"allow": {"delegate": True}}}}, LoggingSpec(allow_delegate=True)),
        (
            {"spec": {"cluster": {"allow": None, "deny": {"log": True, "delegate": False}}}},
            LoggingSpec(deny_log=True),
        ),
        (
            {"spec": {"cluster": {"allow": {"log": True, "delegate": True}, "deny": {}}}},
            LoggingSpec(allow_log=True, allow_delegate=True),
        ),
    ],
)
def test_from_object(obj: dict[str, Any] | None, expected: LoggingSpec) -> None:
    assert LoggingSpec.from_object(obj) == expected


def test_get_with_and_short() -> None:
    spec = LoggingSpec(allow_log=True, allow_delegate=False, deny_log=False, deny_delegate=True)
    assert spec.get("allow") == (True, False)
    assert spec.get("deny") == (False, True)
    assert spec.with_("deny", True, False) == LoggingSpec(True, False, True, False)
    assert spec.with_("allow", False, False) == LoggingSpec(False, False, False, True)
    assert spec.short("allow") == "allow: log=true, delegate=false"
    assert spec.short("deny") == "deny: log=false, delegate=true"


OFF = LoggingSpec()
DENY_ON = LoggingSpec(deny_log=True)
DENY_DELEGATED = LoggingSpec(deny_log=True, deny_delegate=True)
ALLOW_ON = LoggingSpec(allow_log=True)
ALLOW_DELEGATED = LoggingSpec(allow_log=True, allow_delegate=True)
DENY_INVALID = LoggingSpec(deny_delegate=True)
ALLOW_INVALID = LoggingSpec(allow_delegate=True)


def _patch(kind: Kind, log: bool, delegate: bool) -> dict[str, Any]:
    return {"spec": {"cluster": {kind: {"log": log, "delegate": delegate}}}}


@pytest.mark.parametrize(
    ("before", "command", "patch", "after", "warnings"),
    [
        # enable deny
        (OFF, SetLogging("enable", "deny", False), _patch("deny", True, False), DENY_ON, []),
        (OFF, SetLogging("enable", "deny", True), _patch("deny", True, True), DENY_DELEGATED, [NS_LOGGING]),
        (DENY_DELEGATED, SetLogging("enable", "deny", False), _patch("deny", True, False), DENY_ON, []),
        (DENY_INVALID, SetLogging("enable", "deny", False), _patch("deny", True, False), DENY_ON, []),
        # enable allow: without delegation it warns about volume and cost
        (OFF, SetLogging("enable", "allow", False), _patch("allow", True, False), ALLOW_ON, [VOLUME]),
        (OFF, SetLogging("enable", "allow", True), _patch("allow", True, True), ALLOW_DELEGATED, []),
        (
            ALLOW_DELEGATED,
            SetLogging("enable", "allow", False),
            _patch("allow", True, False),
            ALLOW_ON,
            [VOLUME],
        ),
        # the other kind is left alone, and not in the patch
        (
            DENY_DELEGATED,
            SetLogging("enable", "allow", True),
            _patch("allow", True, True),
            LoggingSpec(True, True, True, True),
            [],
        ),
        # disable always sends delegate: false
        (DENY_ON, SetLogging("disable", "deny", False), _patch("deny", False, False), OFF, []),
        (DENY_DELEGATED, SetLogging("disable", "deny", False), _patch("deny", False, False), OFF, []),
        (ALLOW_DELEGATED, SetLogging("disable", "allow", False), _patch("allow", False, False), OFF, []),
        (DENY_INVALID, SetLogging("disable", "deny", False), _patch("deny", False, False), OFF, []),
        (OFF, SetLogging("disable", "allow", False), _patch("allow", False, False), OFF, []),
        (
            LoggingSpec(True, True, True, False),
            SetLogging("disable", "allow", False),
            _patch("allow", False, False),
            DENY_ON,
            [],
        ),
        # delegate on / off while logging is on
        (
            DENY_ON,
            SetLogging("delegate", "deny", True),
            _patch("deny", True, True),
            DENY_DELEGATED,
            [NS_LOGGING],
        ),
        (DENY_DELEGATED, SetLogging("delegate", "deny", False), _patch("deny", True, False), DENY_ON, []),
        (ALLOW_ON, SetLogging("delegate", "allow", True), _patch("allow", True, True), ALLOW_DELEGATED, []),
        (
            ALLOW_DELEGATED,
            SetLogging("delegate", "allow", False),
            _patch("allow", True, False),
            ALLOW_ON,
            [VOLUME],
        ),
        # delegate off while logging is off is allowed (and repairs the invalid state)
        (OFF, SetLogging("delegate", "deny", False), _patch("deny", False, False), OFF, []),
        (OFF, SetLogging("delegate", "allow", False), _patch("allow", False, False), OFF, []),
        (DENY_INVALID, SetLogging("delegate", "deny", False), _patch("deny", False, False), OFF, []),
        (ALLOW_INVALID, SetLogging("delegate", "allow", False), _patch("allow", False, False), OFF, []),
    ],
)
def test_plan(
    before: LoggingSpec, command: SetLogging, patch: dict[str, Any], after: LoggingSpec, warnings: list[str]
) -> None:
    result = plan(before, command)
    assert result.before == before
    assert result.patch == patch
    assert result.after == after
    assert len(result.warnings) == len(warnings)
    for warning, fragment in zip(result.warnings, warnings, strict=True):
        assert fragment in warning


def test_the_allow_warning_is_about_volume_and_cost() -> None:
    (warning,) = plan(OFF, SetLogging("enable", "allow", False)).warnings
    assert "volume" in warning
    assert "billed" in warning
    assert "--delegate" in warning


@pytest.mark.parametrize(
    ("before", "kind"),
    [
        (OFF, "deny"),
        (OFF, "allow"),
        (DENY_INVALID, "deny"),
        (ALLOW_INVALID, "allow"),
        (ALLOW_ON, "deny"),  # the other kind being on does not count
        (DENY_ON, "allow"),
    ],
)
def test_delegate_on_while_logging_is_off_is_refused(before: LoggingSpec, kind: Kind) -> None:
    with pytest.raises(Refused) as caught:
        plan(before, SetLogging("delegate", kind, True))
    message = str(caught.value)
    assert f"{kind} logging is off" in message
    assert "invalid" in message
    assert f"`/netlog enable {kind} --delegate`" in message


@pytest.mark.parametrize("before", ALL_SPECS, ids=str)
@pytest.mark.parametrize("command", ALL_COMMANDS, ids=str)
def test_no_plan_writes_delegate_without_log(before: LoggingSpec, command: SetLogging) -> None:
    try:
        result = plan(before, command)
    except Refused:
        assert command.action == "delegate"
        assert command.delegate
        assert not before.get(command.kind)[0]
        return
    written = result.patch["spec"]["cluster"][command.kind]
    assert set(result.patch["spec"]["cluster"]) == {command.kind}
    assert set(written) == {"log", "delegate"}
    assert not (written["log"] is False and written["delegate"] is True)
    assert result.after.get(command.kind) == (written["log"], written["delegate"])
    # the other kind is untouched
    other = "deny" if command.kind == "allow" else "allow"
    assert result.after.get(other) == before.get(other)


@pytest.mark.parametrize(
    ("before", "command", "nothing"),
    [
        (DENY_ON, SetLogging("enable", "deny", False), True),
        (DENY_DELEGATED, SetLogging("enable", "deny", True), True),
        (OFF, SetLogging("disable", "deny", False), True),
        (DENY_ON, SetLogging("delegate", "deny", False), True),
        (OFF, SetLogging("delegate", "allow", False), True),
        (OFF, SetLogging("enable", "deny", False), False),
        (DENY_ON, SetLogging("delegate", "deny", True), False),
        (DENY_INVALID, SetLogging("disable", "deny", False), False),
        (DENY_INVALID, SetLogging("delegate", "deny", False), False),
    ],
)
def test_changes_nothing(before: LoggingSpec, command: SetLogging, nothing: bool) -> None:
    result = plan(before, command)
    assert isinstance(result, Plan)
    assert result.changes_nothing is nothing


@pytest.mark.parametrize(
    ("kind", "log", "delegate", "fragments"),
    [
        ("deny", False, False, ["Denied connections are not logged."]),
        ("deny", True, False, ["Every denied connection is logged."]),
        ("deny", True, True, ["Denied connections are logged only in namespaces", DENY_ANNOTATION]),
        ("deny", False, True, ["invalid", "InvalidNetworkLogging", "nothing denied is logged"]),
        ("allow", False, False, ["Allowed connections are not logged."]),
        ("allow", True, False, ["Every allowed connection", "high volume"]),
        ("allow", True, True, ["Allowed connections are logged only for policies", ALLOW_ANNOTATION]),
        ("allow", False, True, ["invalid", "InvalidNetworkLogging", "nothing allowed is logged"]),
    ],
)
def test_meaning(kind: Kind, log: bool, delegate: bool, fragments: list[str]) -> None:
    # the other kind is set to the opposite, to show it plays no part
    spec = (
        LoggingSpec().with_(kind, log, delegate).with_("allow" if kind == "deny" else "deny", not log, False)
    )
    sentence = meaning(spec, kind)
    for fragment in fragments:
        assert fragment in sentence
