"""The read commands: open to everyone, answered from the store and the clusters."""

from __future__ import annotations

from datetime import timedelta

from bot.adapters.store import Store
from bot.core.events import NetworkNames, RawMessage
from bot.pipeline import entry_parser, store_messages
from tests.fakes.kube import FakeKube
from tests.services.support import OPERATOR, STRANGER, Bench, text_of


def test_read_commands_are_open_to_everyone(bench: Bench) -> None:
    netlog = bench.netlog
    status = text_of(netlog.handle(STRANGER, "status"))
    assert "*prod-eu*" in status
    assert "Denied connections are not logged." in status
    routes = text_of(netlog.handle(STRANGER, "routes test namespace=payments-eu cluster=prod-eu"))
    assert "C0PAY: route 1 (`namespace=payments*`)" in routes
    assert "C0DEF: the default channel" in text_of(netlog.handle(STRANGER, "routes test namespace=web"))


def test_syntax_errors_answer_with_the_problem_and_the_help(bench: Bench) -> None:
    reply = text_of(bench.netlog.handle(OPERATOR, "enable maybe"))
    assert "`maybe` is neither `allow` nor `deny`" in reply
    assert "`/netlog` commands" in reply


def test_status_of_an_unreadable_cluster_says_why(bench: Bench, kube: FakeKube, store: Store) -> None:
    kube.fail_next(403, 1)
    status = text_of(bench.netlog.handle(STRANGER, "status --cluster prod-eu"))
    assert "The bot may not `get` `networkloggings`" in status
    assert "Active mutes: 0" in status
    assert "I don't manage a cluster `nowhere`" in text_of(
        bench.netlog.handle(STRANGER, "status --cluster nowhere")
    )


def test_status_names_the_last_hours_rejects_by_reason(bench: Bench, store: Store) -> None:
    parser = entry_parser(NetworkNames())
    store_messages(
        store, [RawMessage(b"junk"), RawMessage(b"[1]")], parser, bench.clock() - timedelta(hours=2)
    )
    status = text_of(bench.netlog.handle(STRANGER, "status"))
    assert "rejected messages kept: 2" in status
    assert "Rejected in the last hour" not in status  # two hours ago: not what is happening now
    store_messages(store, [RawMessage(b"junk again")], parser, bench.clock())
    status = text_of(bench.netlog.handle(STRANGER, "status"))
    assert "Rejected in the last hour: `not_json` ×1. `netlog-bot rejects` shows them" in status
