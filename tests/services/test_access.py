"""Who may run what: refusals name who may and are audited; operator groups are asked of Slack at
most every five minutes on the injected clock; Apply checks again."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.adapters.slack import SlackGateway, make_client
from bot.adapters.store import Store
from bot.core.outbox import AuditLine
from bot.render.audit import audit_message
from bot.services.access import GROUPS_CACHE, Access
from bot.settings import AccessSection
from tests.clock import ManualClock
from tests.fakes.kube import FakeKube
from tests.fakes.slack import FakeSlack
from tests.services.support import (
    MEMBER,
    OPERATOR,
    STRANGER,
    Bench,
    audit_rows,
    change_id,
    deny_spec,
    text_of,
)


def test_unauthorized_users_are_refused_told_who_can_and_audited(bench: Bench, store: Store) -> None:
    reply = bench.netlog.handle(STRANGER, "enable deny")
    assert "Only operators may run `enable`: <@U0OP>, <!subteam^S0OPS>" in text_of(reply)
    [row] = audit_rows(store)
    assert (row["user_id"], row["result"]) == (STRANGER, "refused")
    lines = [item.message for item in store.outbox.pending() if isinstance(item.message, AuditLine)]
    assert any("refused" in audit_message(line.entry).text for line in lines)


def test_members_of_operator_groups_may_act_and_groups_are_cached(bench: Bench, slack: FakeSlack) -> None:
    assert "Apply" in json.dumps(bench.netlog.handle(MEMBER, "enable deny").blocks)
    bench.netlog.handle(MEMBER, "enable deny")
    assert len(slack.calls_to("usergroups.users.list")) == 1


def test_apply_rechecks_authorization(bench: Bench, kube: FakeKube) -> None:
    card = bench.netlog.handle(OPERATOR, "enable deny")
    assert "Only operators" in text_of(bench.apply(STRANGER, change_id(card)))
    assert deny_spec(kube)["log"] is False


def test_the_group_cache_expires_on_the_injected_clock(slack: FakeSlack) -> None:
    clock = ManualClock()
    policy = AccessSection(operator_groups=("S0OPS",))
    access = Access(policy, SlackGateway(make_client(slack.token, slack.base_url)), clock)
    assert access.allowed(MEMBER, "enable")
    slack.add_usergroup("S0OPS", [STRANGER])  # MEMBER left the group, STRANGER joined

    clock.now += GROUPS_CACHE - timedelta(seconds=1)
    assert access.allowed(MEMBER, "enable")  # still trusted: Slack is not asked again
    assert not access.allowed(STRANGER, "enable")
    assert len(slack.calls_to("usergroups.users.list")) == 1

    clock.now += timedelta(seconds=1)
    assert not access.allowed(MEMBER, "enable")
    assert access.allowed(STRANGER, "enable")
    assert len(slack.calls_to("usergroups.users.list")) == 2


def test_an_unreadable_group_keeps_its_last_members(slack: FakeSlack) -> None:
    clock = ManualClock()
    access = Access(
        AccessSection(operator_groups=("S0OPS",)),
        SlackGateway(make_client(slack.token, slack.base_url)),
        clock,
    )
    assert access.allowed(MEMBER, "mute")
    clock.now += GROUPS_CACHE
    slack.error_next("usergroups.users.list", "missing_scope")
    assert access.allowed(MEMBER, "mute")
    assert access.allowed(STRANGER, "status")  # read commands need nobody's permission
