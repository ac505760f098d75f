"""`recent` and `top` from the flow history, as Slack and the terminal answer them: exact counts
from events that went through the real pipeline, the source and window named, bad words answered
with a sentence, and the terminal printing what the renderer gives Slack."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.store import Store
from bot.cli import main
from bot.core import commands as cmd
from bot.core.events import NetworkNames
from bot.core.grouping import Grouper, GroupingPolicy
from bot.core.routing import RoutingTable
from bot.pipeline import GroupingWorker, entry_parser, store_messages
from bot.render.history import answer_reply, answer_text
from bot.render.times import slack_time
from bot.services.history import HistoryQueries, NoAnswer
from tests.logentries import raw_message

NOW = datetime(2026, 11, 3, 10, 25, tzinfo=UTC)


def fill(store: Store, now: datetime, messages: list[tuple[datetime, dict[str, Any]]]) -> None:
    """Messages (their time, builder fields) stored and grouped as the bot does."""
    parser = entry_parser(NetworkNames())
    store_messages(store, [raw_message(at=at, **fields) for at, fields in messages], parser, now)
    GroupingWorker(store, Grouper(GroupingPolicy(), RoutingTable((), "C0WEB"))).catch_up(now)


def queries(store: Store, now: datetime = NOW) -> HistoryQueries:
    return HistoryQueries(store.history, None, "acme", lambda: now, store.grouping.history_started)


def ask(service: HistoryQueries, words: str) -> str:
    command = cmd.parse(words)
    assert isinstance(command, cmd.Recent | cmd.Top)
    return answer_text(service.answer("U1", command))


def test_recent_counts_exactly_newest_first_and_names_source_and_window(store: Store) -> None:
    fill(
        store,
        NOW,
        [
            (NOW - timedelta(minutes=50), {"source": "web", "count": 5}),
            (NOW - timedelta(minutes=20), {"source": "web", "count": 7, "node": "n2"}),
            (NOW - timedelta(minutes=5), {"source": "batch", "count": 2}),
            (NOW - timedelta(minutes=4), {"source": "web", "namespace": "shop"}),
            (NOW - timedelta(hours=3), {"source": "old", "count": 100}),
        ],
    )
    answer = ask(queries(store), "recent ns=payments since=1h")
    assert "Recent denied flows for ns=payments" in answer
    window = "2026-11-03 09:00–10:25 UTC (whole hours, the current one so far)."
    assert f"From the bot's history, {window}" in answer
    assert "At least 14 denied attempts in 2 flows (3 log entries)." in answer
    lines = [line for line in answer.splitlines() if line.startswith("• ")]
    assert lines == [
        "• prod checkout/batch → payments/api :443/tcp, ingress · at least 2 attempts · 10:20 UTC · node n1",
        "• prod checkout/web → payments/api :443/tcp, ingress · at least 12 attempts · 09:35–10:05 UTC "
        "· node n1 (+1)",
    ]
    assert "shop" not in answer
    assert "checkout/old" not in answer
    assert "Open in Logs Explorer: https://console.cloud.google.com/logs/query;query=" in answer


def test_top_compares_with_the_previous_period_and_says_new(store: Store) -> None:
    fill(
        store,
        NOW,
        [
            (NOW - timedelta(minutes=30), {"namespace": "payments", "count": 30}),
            (NOW - timedelta(minutes=30), {"namespace": "shop", "count": 10}),
            (NOW - timedelta(hours=2, minutes=30), {"namespace": "payments", "count": 20}),
        ],
    )
    answer = ask(queries(store), "top by=namespace since=1h")
    assert "Top namespaces by denied attempts" in answer
    # 09:00-10:25 (85 minutes) against 07:00-09:00 scaled to 85 minutes: 20 x 85/120 = 14.
    assert "Compared with 2026-11-03 07:00–09:00 UTC, scaled to this window's length." in answer
    assert "At least 40 denied attempts in all (previous period: 14)." in answer
    assert "1. payments — 30 (75%) ↑114%" in answer
    assert "2. shop — 10 (25%) new" in answer
    assert "The bot's history starts at 2026-11-03 07:55 UTC, inside the previous period" in answer


def test_share_posts_in_the_channel_and_slack_text_is_escaped(store: Store) -> None:
    fill(store, NOW, [(NOW - timedelta(minutes=1), {"source": "<!channel>"})])
    command = cmd.parse("recent share")
    assert isinstance(command, cmd.Recent)
    reply = answer_reply(queries(store).answer("U1", command))
    assert reply.response_type == "in_channel"
    shown = "\n".join(block["text"]["text"] for block in reply.blocks if block["type"] == "section")
    assert "<!channel>" not in shown
    assert "&lt;!channel&gt;" in shown
    assert len(reply.blocks) <= 50
    # Each flow's time in the reader's zone, with its date; the terminal's stays UTC.
    moment = slack_time(NOW - timedelta(minutes=1))
    assert f"at least 1 attempt · {moment}" in shown


def test_an_empty_window_says_so_instead_of_answering_nothing(store: Store) -> None:
    answer = ask(queries(store), "recent ns=payments")
    assert "No denied flows matched in this window." in answer
    assert "The bot's history holds nothing yet: it fills as the bot groups denies." in answer


def test_a_window_before_the_history_without_cloud_logging_says_what_is_missing(store: Store) -> None:
    fill(store, NOW, [(NOW - timedelta(minutes=5), {})])
    answer = ask(queries(store), "recent since=7d")
    assert "The bot's history starts at 2026-11-03 10:20 UTC, after the start of this window" in answer
    assert "Cloud Logging is not set up (GOOGLE_CLOUD_PROJECT) to fill the gap." in answer
    command = cmd.parse("recent source=logging")
    assert isinstance(command, cmd.Recent)
    with pytest.raises(NoAnswer, match="Cloud Logging is not set up for this bot"):
        queries(store).answer("U1", command)


@pytest.mark.parametrize(
    ("words", "sentence"),
    [
        ("recent port=http", "`port=http` is not a port; give a number from 1 to 65535, e.g. `port=5432`."),
        ("recent since=yesterday", "`since=yesterday` is not a duration"),
        ("recent since=365d", "`since` goes back at most 90d"),
        ("top by=pod", "`by=pod`: use one of namespace, flow, source, destination, node, port"),
        ("recent ns=Payments!", "`Payments!` is not a Kubernetes namespace name; e.g. `ns=payments`."),
        ("recent src=[ab]*", "`src` takes `*` and `?` wildcards only"),
        ("recent limit=0", "`limit=0`: give a number from 1 to 50"),
        ("recent payments", "`payments` is not a filter; write `name=value`"),
        ("recent by=namespace", "`recent` has no `by`"),
        ("recent proto=http", "`proto=http` is not a protocol GKE logs"),
        ("recent ns=a ns=b", "Which ns: `a` or `b`? Give it once."),
    ],
)
def test_bad_words_get_a_sentence_with_an_example(words: str, sentence: str) -> None:
    with pytest.raises(cmd.CommandError) as refused:
        cmd.parse(words)
    assert sentence in str(refused.value)


@pytest.mark.usefixtures("env")
def test_the_terminal_prints_what_slack_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(f"sqlite:///{tmp_path / 'netlog.db'}")
    store.migrate()
    now = datetime.now(UTC)
    fill(store, now, [(now - timedelta(seconds=30), {"source": "web", "count": 3})])
    assert main(["recent", "ns=payments", "since=1h"]) == 0
    printed = capsys.readouterr().out
    assert "At least 3 denied attempts in 1 flow (1 log entry)." in printed
    assert "checkout/web → payments/api :443/tcp, ingress" in printed
    assert main(["top", "--cluster", "prod", "by=source"]) == 0
    assert "1. checkout/web — 3 (100%)" in capsys.readouterr().out
    store.close()


@pytest.mark.usefixtures("env")
def test_the_terminal_refuses_bad_words_and_a_missing_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["recent", "port=http"]) == 2
    assert "netlog-bot recent: port=http is not a port" in capsys.readouterr().err
    monkeypatch.setenv("NETLOG_DB_URL", f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}")
    assert main(["top"]) == 2
    assert "which does not exist: point it at the bot's store" in capsys.readouterr().err


@pytest.mark.usefixtures("env")
def test_the_terminal_reads_without_upgrading_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()  # a database no bot has started on: the reader must not build its schema
    monkeypatch.setenv("NETLOG_DB_URL", f"sqlite:///{empty}")
    assert main(["recent"]) == 2
    assert "is at schema revision none, and this netlog-bot reads 0011: run netlog-bot db upgrade" in (
        capsys.readouterr().err
    )
    with closing(sqlite3.connect(empty)) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == []
    monkeypatch.setenv("NETLOG_DB_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    assert main(["top"]) == 2
    assert "netlog-bot top: could not read the store at NETLOG_DB_URL (" in capsys.readouterr().err
