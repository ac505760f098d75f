"""Mutes: the active window (created_at <= now < expires_at), glob matching over event fields,
`muted_by` (an active matching mute; expired and future ones ignored), `mute_duration` (default, maximum,
zero), `matchers_of_group` (glob characters taken literally), `label`, and which mute silences a whole
alert group (`covers_group`, `mute_of_group`: what the alert's message says)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.commands import Matchers
from bot.core.mutes import Mute, covers_group, matchers_of_group, mute_duration, mute_of_group, muted_by

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
FIELDS = {"cluster": "prod-eu", "namespace": "payments", "dest_port": "53", "protocol": "udp", "node": ""}


def mute(matchers: Matchers, *, start: datetime = T0, length: timedelta = HOUR, mute_id: int = 1) -> Mute:
    return Mute(mute_id, matchers, start, start + length, "U123", "reason")


@pytest.mark.parametrize(
    ("now", "active"),
    [
        (T0 - timedelta(microseconds=1), False),
        (T0, True),
        (T0 + timedelta(minutes=30), True),
        (T0 + HOUR - timedelta(microseconds=1), True),
        (T0 + HOUR, False),
        (T0 + 2 * HOUR, False),
    ],
)
def test_active_window(now: datetime, active: bool) -> None:
    assert mute((("namespace", "x"),)).active(now) is active


@pytest.mark.parametrize(
    ("matchers", "matches"),
    [
        ((("namespace", "payments"),), True),
        ((("namespace", "pay*"),), True),
        ((("namespace", "pay?ents"),), True),
        ((("namespace", "[op]ayments"),), True),
        ((("namespace", "payment"),), False),
        ((("namespace", "Payments"),), False),  # case-sensitive, as Kubernetes names are
        ((("namespace", "payments"), ("dest_port", "53")), True),
        ((("namespace", "payments"), ("dest_port", "443")), False),  # every matcher must match
        ((("cluster", "prod-*"), ("protocol", "udp"), ("dest_port", "5?")), True),
        ((("src_ip", "*"),), True),  # an absent field is the empty string, which `*` matches
        ((("src_ip", "10.*"),), False),
        ((("node", "*"),), True),
        ((("node", "n*"),), False),
        ((), True),
    ],
)
def test_matches(matchers: Matchers, matches: bool) -> None:
    assert mute(matchers).matches(FIELDS) is matches


def test_muted_by_picks_an_active_matching_mute() -> None:
    now = T0 + timedelta(minutes=30)
    expired = mute((("namespace", "payments"),), start=T0 - 2 * HOUR, mute_id=1)
    future = mute((("namespace", "payments"),), start=T0 + HOUR, mute_id=2)
    other = mute((("namespace", "web"),), mute_id=3)
    active = mute((("namespace", "pay*"),), mute_id=4)
    also_active = mute((("cluster", "prod-*"),), mute_id=5)
    assert muted_by(FIELDS, [expired, future, other, active, also_active], now) == active
    assert muted_by(FIELDS, [expired, future, other], now) is None
    assert muted_by(FIELDS, [], now) is None
    assert muted_by({"namespace": "web"}, [active, other], now) == other


@pytest.mark.parametrize(
    ("now", "muted"),
    [
        (T0 - timedelta(seconds=1), False),  # not started yet
        (T0, True),
        (T0 + HOUR - timedelta(seconds=1), True),
        (T0 + HOUR, False),  # expired
    ],
)
def test_muted_by_respects_the_window(now: datetime, muted: bool) -> None:
    only = mute((("namespace", "payments"),))
    assert (muted_by(FIELDS, [only], now) is only) is muted


DEFAULT, MAXIMUM = timedelta(hours=1), timedelta(days=7)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (None, DEFAULT),
        (timedelta(minutes=30), timedelta(minutes=30)),
        (timedelta(days=2), timedelta(days=2)),
        (MAXIMUM, MAXIMUM),
    ],
)
def test_mute_duration(requested: timedelta | None, expected: timedelta) -> None:
    assert mute_duration(requested, DEFAULT, MAXIMUM) == expected


@pytest.mark.parametrize(
    ("requested", "default", "maximum", "fragment"),
    [
        (timedelta(0), DEFAULT, MAXIMUM, "longer than zero"),  # refused, not replaced by the default
        (timedelta(seconds=-1), DEFAULT, MAXIMUM, "longer than zero"),
        (None, timedelta(0), MAXIMUM, "longer than zero"),
        (MAXIMUM + timedelta(seconds=1), DEFAULT, MAXIMUM, "at most 7 days"),
        (timedelta(days=30), DEFAULT, MAXIMUM, "at most 7 days"),
        (None, timedelta(days=8), MAXIMUM, "at most 7 days"),
        (timedelta(hours=37), DEFAULT, timedelta(hours=36), "at most 36 hours"),
        (timedelta(hours=2), DEFAULT, timedelta(minutes=90), "at most 90m"),
        (timedelta(hours=1), timedelta(minutes=10), timedelta(minutes=30), "at most 30m"),
    ],
)
def test_mute_duration_refused(
    requested: timedelta | None, default: timedelta, maximum: timedelta, fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        mute_duration(requested, default, maximum)


@pytest.mark.parametrize(
    ("value", "matches", "misses"),
    [
        ("payments", ["payments"], ["payment", "payments-eu", "Payments"]),
        ("pay*", ["pay*"], ["payments", "pay"]),
        ("a?c", ["a?c"], ["abc"]),
        ("[ab]", ["[ab]"], ["a", "b"]),
        ("x[", ["x["], ["x", "x[]"]),
        ("]x", ["]x"], ["x"]),
        ("[!a]", ["[!a]"], ["b", "!"]),
        ("*?[]!", ["*?[]!"], ["", "x?[]!"]),
        ("", [""], ["x"]),
    ],
)
def test_matchers_of_group_take_glob_characters_literally(
    value: str, matches: list[str], misses: list[str]
) -> None:
    matchers = matchers_of_group([("namespace", value), ("dest_port", "53")])
    assert [name for name, _ in matchers] == ["namespace", "dest_port"]
    group_mute = mute(matchers)
    for candidate in matches:
        assert group_mute.matches({"namespace": candidate, "dest_port": "53"})
    for candidate in misses:
        assert not group_mute.matches({"namespace": candidate, "dest_port": "53"})
    assert not group_mute.matches({"namespace": value, "dest_port": "530"})


def test_matchers_of_group_leave_plain_values_alone() -> None:
    assert matchers_of_group([("cluster", "prod-eu"), ("dest_port", "53")]) == (
        ("cluster", "prod-eu"),
        ("dest_port", "53"),
    )


@pytest.mark.parametrize(
    ("matchers", "label"),
    [
        ((("namespace", "payments"),), "namespace=payments"),
        ((("namespace", "pay*"), ("dest_port", "53")), "namespace=pay* dest_port=53"),
        ((), ""),
    ],
)
def test_label(matchers: Matchers, label: str) -> None:
    assert mute(matchers).label == label


KEY = '["C0PAY",0,[["cluster","prod-eu"],["namespace","payments"]]]'
LABELS = (("cluster", "prod-eu"), ("namespace", "payments"))


@pytest.mark.parametrize(
    ("candidate", "covers"),
    [
        (mute((("namespace", "pay*"),)), True),  # every deny of the group has namespace=payments
        (mute((("cluster", "prod-eu"), ("namespace", "payments"))), True),
        (mute((("namespace", "shop"),)), False),
        (mute((("dest_port", "53"),)), False),  # some of its denies, maybe: not the whole group
        (mute((("namespace", "payments"), ("dest_port", "53"))), False),
        (replace(mute((("namespace", "payments"),)), group_key=KEY), True),  # its Mute button
        (replace(mute((("namespace", "payments"),)), group_key=KEY.replace("C0PAY", "C0X")), False),
    ],
)
def test_a_mute_covers_a_group_when_all_its_denies_match(candidate: Mute, covers: bool) -> None:
    assert covers_group(candidate, KEY, LABELS) is covers


def test_the_mute_an_alert_shows_is_the_newest_active_one_covering_it() -> None:
    older = mute((("namespace", "payments"),), mute_id=1)
    newer = replace(mute((("cluster", "prod-eu"),), mute_id=2, length=2 * HOUR), group_key=KEY)
    other = mute((("namespace", "shop"),), mute_id=3)
    assert mute_of_group(KEY, LABELS, [older, newer, other], T0) == newer
    assert mute_of_group(KEY, LABELS, [older, newer, other], T0 + HOUR) == newer  # the older ended
    assert mute_of_group(KEY, LABELS, [older, newer, other], T0 + 2 * HOUR) is None
