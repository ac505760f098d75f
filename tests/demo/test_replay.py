"""`replay` end to end in-process: the same output as the old path (parse, sort, store raw bodies)
on the demo's traffic, everything due in a storm tick folded before the clock moves on, and a
progress line only on a terminal."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import open_store
from bot.commands import replay as replay_command
from bot.commands.demo import demo_settings
from bot.commands.replay import run_replay
from bot.core.events import RawMessage, RejectedEntry, parse_message
from bot.demo import player
from bot.demo.player import Timed, play, print_summary
from bot.demo.traffic import generate
from tests.logentries import log_entry

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def old_path(messages: list[RawMessage], db: Path) -> str:
    """What replay did before streaming: parse to place, stable sort, junk first, store raw bodies."""
    settings = demo_settings(f"sqlite:///{db}")
    placed, unplaced = [], []
    for message in messages:
        try:
            placed.append(Timed(parse_message(message.data, settings.networks).timestamp, message))
        except RejectedEntry:
            unplaced.append(message)
    placed.sort(key=lambda item: item.at)
    timeline = [Timed(placed[0].at, message) for message in unplaced] + placed
    out = io.StringIO()
    store = open_store(settings)
    try:
        print_summary(play(timeline, settings, store, out), store, out)
    finally:
        store.close()
    return out.getvalue()


def replayed(data: bytes, db: Path, err: io.StringIO | None = None) -> str:
    out = io.StringIO()
    assert run_replay(io.BytesIO(data), demo_settings(f"sqlite:///{db}"), out, err=err) == 0
    return out.getvalue()


def test_the_demo_traffic_replays_as_the_old_path_played_it(tmp_path: Path) -> None:
    arrivals = generate(7)
    data = b"\n".join(arrival.data for arrival in arrivals) + b"\n"
    messages = [RawMessage(arrival.data, f"line {n}") for n, arrival in enumerate(arrivals, 1)]
    before = old_path(messages, tmp_path / "old.db")
    after = replayed(data, tmp_path / "new.db")
    assert after == before
    assert "new message" in after
    assert "rejected messages kept for inspection" in after


def test_a_storm_tick_is_folded_whole_before_the_clock_moves_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(player, "FOLD_BATCH", 100)  # a tick holds 15 grouping steps
    lines = [json.dumps(log_entry(at=T0, insert_id=f"e{n}")) for n in range(1500)]
    out = replayed("\n".join(lines).encode(), tmp_path / "storm.db")
    first_alert = out.split("\n\n", 1)[0]
    assert "ingress  ×1,500" in first_alert, first_alert  # not the 100 of one grouping step


def test_idle_stretches_are_skipped_not_ticked_through(tmp_path: Path) -> None:
    """A sample from 2020 beside one from today: six years of 10 s ticks (19 million) before;
    now the clock jumps to the next arrival or grouping deadline, on the same tick grid."""
    old, new = datetime(2020, 6, 13, 21, 30, tzinfo=UTC), T0
    timeline = [
        Timed(old, RawMessage(json.dumps(log_entry(at=old, insert_id="old")).encode())),
        Timed(new, RawMessage(json.dumps(log_entry(at=new, insert_id="new", source="api")).encode())),
    ]
    settings = demo_settings(f"sqlite:///{tmp_path / 'sparse.db'}")
    store = open_store(settings)
    ticks: list[int] = []
    out = io.StringIO()
    try:
        summary = play(timeline, settings, store, out, on_tick=lambda s: ticks.append(s.messages))
    finally:
        store.close()
    assert len(ticks) < 20
    shown = out.getvalue()
    assert shown.count("new message") == 2
    assert shown.count("[quiet since") == 2
    assert summary.ended_at is not None
    assert summary.ended_at - new < timedelta(minutes=10)


def test_a_terminal_gets_a_progress_line_that_is_cleared_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_command, "REDRAW_EVERY", 0.0)
    err = Terminal()
    data = b"\n".join(arrival.data for arrival in generate(7))
    out = replayed(data, tmp_path / "tty.db", err)
    drawn = err.getvalue()
    assert "read · " in drawn
    assert " stored · " in drawn
    assert "rejected" in drawn
    assert drawn.endswith("\r\x1b[K")  # nothing left over the summary
    assert "\x1b" not in out


def test_nothing_is_drawn_when_stderr_is_piped(tmp_path: Path) -> None:
    err = io.StringIO()
    replayed(b"\n".join(arrival.data for arrival in generate(7)), tmp_path / "piped.db", err)
    assert err.getvalue() == ""


def test_the_progress_line_shows_a_bar_and_an_eta_for_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_command, "REDRAW_EVERY", 0.0)
    path = tmp_path / "entries.jsonl"
    path.write_bytes(b"\n".join(arrival.data for arrival in generate(7)))
    err = Terminal()
    with path.open("rb") as source:
        run_replay(source, demo_settings(f"sqlite:///{tmp_path / 'bar.db'}"), io.StringIO(), err=err)
    assert "] 100%" in err.getvalue()
    assert "ETA " in err.getvalue()
