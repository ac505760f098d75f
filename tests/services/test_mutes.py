"""Mutes from `/netlog mute` and from an alert's button (decoded with `GroupKey`), listed and ended."""

from __future__ import annotations

from datetime import timedelta

from bot.adapters.store import Store
from bot.core.grouping import GroupKey
from bot.render.times import slack_time
from tests.services.support import OPERATOR, STRANGER, Bench, audit_rows, change_id, text_of


def test_mute_from_text_then_list_then_unmute(bench: Bench, store: Store) -> None:
    netlog, clock = bench.netlog, bench.clock
    card = netlog.handle(OPERATOR, "mute namespace=payments dest_port=53 for 2h -- known DNS issue")
    assert "for 2h" in text_of(card)
    assert "known DNS issue" in text_of(card)
    done = text_of(bench.apply(OPERATOR, change_id(card)))
    assert "Muted #" in done
    assert f"until {slack_time(clock.now + timedelta(hours=2))}." in done  # each reader's own time
    [mute] = store.mutes.active(clock.now)
    assert mute.matchers == (("namespace", "payments"), ("dest_port", "53"))
    assert mute.expires_at == clock.now + timedelta(hours=2)
    assert "namespace=payments dest_port=53" in text_of(netlog.handle(STRANGER, "mutes"))
    bench.apply(OPERATOR, change_id(netlog.handle(OPERATOR, f"unmute {mute.id}")))
    assert store.mutes.active(clock.now) == []
    assert [r["action"] for r in audit_rows(store)] == ["mute", "unmute"]
    mute_row, unmute_row = audit_rows(store)
    assert mute_row["after"] == f"#{mute.id} namespace=payments dest_port=53 for 2h"
    assert (mute_row["detail"], unmute_row["before"]) == (
        "known DNS issue",
        "namespace=payments dest_port=53",
    )


def test_unmuting_what_is_not_muted_says_so(bench: Bench) -> None:
    card = bench.netlog.handle(OPERATOR, "unmute 42")
    assert "There is no active mute #42" in text_of(bench.apply(OPERATOR, change_id(card)))


def test_mutes_have_a_maximum(bench: Bench) -> None:
    assert "Mutes last at most 24 hours" in text_of(bench.netlog.handle(OPERATOR, "mute namespace=x for 3d"))


def test_mute_button_mutes_exactly_that_group(bench: Bench, store: Store) -> None:
    netlog, clock = bench.netlog, bench.clock
    key = GroupKey("C0PAY", 0, (("cluster", "prod-eu"), ("namespace", "pay*ments"))).encode()
    assert "Muted #" in text_of(netlog.mute_group(OPERATOR, key, timedelta(hours=1), "C0PAY"))
    [mute] = store.mutes.active(clock.now)
    assert mute.group_key == key  # that alert only, not the same labels routed elsewhere
    assert mute.matches({"cluster": "prod-eu", "namespace": "pay*ments"})
    assert not mute.matches({"cluster": "prod-eu", "namespace": "payroll-payments"})
    assert "does not name an alert group" in text_of(
        netlog.mute_group(OPERATOR, "{forged", timedelta(hours=1), "C")
    )
    assert "at most" in text_of(netlog.mute_group(OPERATOR, key, timedelta(days=3), "C0PAY"))
    assert "Only operators" in text_of(netlog.mute_group(STRANGER, key, timedelta(hours=1), "C0PAY"))
