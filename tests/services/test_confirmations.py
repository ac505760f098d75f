"""Confirmation cards: claimed once, expired after ten minutes, cancel is final; the saved command's
codec round-trips every mutating command and reads the rows written before it existed."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.adapters.store import Store
from bot.adapters.store.tables import pending_changes
from bot.core import commands as cmd
from bot.services.confirmations import Change, dump_change, load_change
from tests.clock import T0
from tests.fakes.kube import FakeKube
from tests.services.support import OPERATOR, Bench, change_id, deny_spec, text_of


def test_cards_expire_after_ten_minutes_and_cancel_is_final(bench: Bench, kube: FakeKube) -> None:
    card = bench.netlog.handle(OPERATOR, "enable deny")
    bench.clock.now += timedelta(minutes=11)
    assert "expired" in text_of(bench.apply(OPERATOR, change_id(card)))
    other = bench.netlog.handle(OPERATOR, "enable deny")
    assert "Cancelled" in text_of(bench.netlog.cancel(OPERATOR, change_id(other)))
    assert "already cancelled" in text_of(bench.apply(OPERATOR, change_id(other)))
    assert deny_spec(kube)["log"] is False


def test_an_unknown_card_changes_nothing(bench: Bench) -> None:
    assert "Nothing to do" in text_of(bench.apply(OPERATOR, "0" * 32))
    assert "Already unknown." in text_of(bench.netlog.cancel(OPERATOR, "0" * 32))


@pytest.mark.parametrize(
    ("command", "record"),
    [
        (
            cmd.SetLogging("enable", "deny", True, "prod-eu"),
            {
                "type": "SetLogging",
                "action": "enable",
                "kind": "deny",
                "delegate": True,
                "cluster": "prod-eu",
            },
        ),
        (
            cmd.NamespaceLogging("payments", False),
            {"type": "NamespaceLogging", "namespace": "payments", "on": False, "cluster": None},
        ),
        (
            cmd.Mute((("namespace", "payments"), ("dest_port", "53")), timedelta(hours=2), "known DNS issue"),
            {
                "type": "Mute",
                "matchers": [["namespace", "payments"], ["dest_port", "53"]],
                "duration": 7200.0,
                "reason": "known DNS issue",
            },
        ),
        (
            cmd.Mute((("cluster", "prod-*"),)),
            {"type": "Mute", "matchers": [["cluster", "prod-*"]], "duration": None, "reason": ""},
        ),
        (cmd.Unmute(7), {"type": "Unmute", "mute_id": 7}),
    ],
)
def test_the_codec_writes_the_shape_rows_always_had(command: Change, record: dict[str, object]) -> None:
    assert dump_change(command) == record
    assert load_change(record) == command


def test_a_foreign_command_type_is_refused() -> None:
    with pytest.raises(ValueError, match="Status"):
        load_change({"type": "Status", "cluster": None})


LEGACY_ROWS = {
    # Exactly as the hand-written `_dump` of the code before the services wrote them.
    "legacy-mute": '{"command":{"type":"Mute","matchers":[["namespace","payments"],["dest_port","53"]],'
    '"duration":7200.0,"reason":"known DNS issue"},"cluster":null,'
    '"text":"mute namespace=payments dest_port=53 for 2h -- known DNS issue"}',
    "legacy-enable": '{"command":{"type":"SetLogging","action":"enable","kind":"deny","delegate":false,'
    '"cluster":null},"cluster":"prod-eu","text":"enable deny"}',
}


def test_pending_rows_written_before_the_codec_still_apply(
    bench: Bench, store: Store, kube: FakeKube
) -> None:
    with store.db.begin() as conn:
        for change, command in LEGACY_ROWS.items():
            row = {
                "id": change,
                "user_id": OPERATOR,
                "created_at": T0,
                "command": command,
                "state": "pending",
            }
            conn.execute(sa.insert(pending_changes).values(**row))

    assert "Muted #1" in text_of(bench.apply(OPERATOR, "legacy-mute"))
    [mute] = store.mutes.active(bench.clock.now)
    assert mute.matchers == (("namespace", "payments"), ("dest_port", "53"))
    assert mute.expires_at == T0 + timedelta(hours=2)
    assert mute.reason == "known DNS issue"
    assert "now has `deny: log=true, delegate=false`" in text_of(bench.apply(OPERATOR, "legacy-enable"))
    assert deny_spec(kube) == {"log": True, "delegate": False}
