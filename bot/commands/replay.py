"""`netlog-bot replay`: LogEntries from a file (JSON lines, push envelopes, `gcloud logging read
--format=json`, or `jq .` output) through the whole pipeline, each at its own timestamp, printed as
alerts. The file is streamed (see `bot.demo.timeline`); a terminal gets a progress line on stderr."""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TextIO, cast

from bot.adapters.store import Store
from bot.core.events import RawMessage
from bot.demo.player import PlaySummary, play, print_summary
from bot.demo.timeline import Tally, in_time_order, place, read_messages
from bot.pipeline import entry_parser
from bot.render.progress import ReplayProgress, render_progress
from bot.settings import Settings

#: Seconds between two redraws of the progress line.
REDRAW_EVERY = 0.25


def run_replay(
    source: BinaryIO,
    settings: Settings,
    out: TextIO,
    db_url: str | None = None,
    err: TextIO | None = None,
) -> int:
    """Replays LogEntries from `source`; a progress line goes to `err` when it is a terminal."""
    tally = Tally()
    terminal = _Terminal(err, tally, _size(source)) if err is not None and err.isatty() else None
    with tempfile.TemporaryDirectory(prefix="netlog-replay-") as folder:
        url = db_url or f"sqlite:///{Path(folder) / 'replay.db'}"
        # Not bot.app.open_store: importing the composition root loads the Slack, Pub/Sub and
        # Kubernetes clients, 80 MB that an offline replay never uses.
        store = Store(url, scratch=db_url is None)
        store.migrate()
        try:
            messages = read_messages(source, tally)
            if terminal is not None:
                out = cast(TextIO, _ClearingOut(out, terminal))  # print() needs only write()
                messages = terminal.watch(messages)
            timeline = in_time_order(place(messages, entry_parser(settings.networks), datetime.now(UTC)))
            summary = play(timeline, settings, store, out, on_tick=terminal.update if terminal else None)
            if terminal is not None:
                terminal.clear()
            print_summary(summary, store, out)
        finally:
            store.close()
    return 0


def _size(source: BinaryIO) -> int | None:
    """The input's size when it is a regular file (not a pipe), for the bar and the ETA."""
    try:
        return os.fstat(source.fileno()).st_size or None
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


class _Terminal:
    """Draws the progress line on a terminal, at most every REDRAW_EVERY seconds."""

    def __init__(self, err: TextIO, tally: Tally, size: int | None) -> None:
        self.err = err
        self.tally = tally
        self.size = size
        self.started = time.monotonic()
        self.drawn_at = 0.0
        self.shown = False
        self.summary = PlaySummary()

    def watch(self, messages: Iterable[RawMessage]) -> Iterator[RawMessage]:
        """Redraws while the input is read, too: the first window is read before anything plays."""
        for message in messages:
            self.redraw()
            yield message

    def update(self, summary: PlaySummary) -> None:
        self.summary = summary
        self.redraw()

    def redraw(self) -> None:
        moment = time.monotonic()
        if moment - self.drawn_at < REDRAW_EVERY:
            return
        self.drawn_at = moment
        progress = ReplayProgress(
            read=self.tally.messages,
            stored=self.summary.stored,
            duplicates=self.summary.duplicates,
            rejected=self.summary.rejected,
            seconds=moment - self.started,
            bytes_read=self.tally.bytes_read,
            bytes_total=self.size,
        )
        self.err.write(f"\r\x1b[K{render_progress(progress)}")
        self.err.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self.shown = False


class _ClearingOut(io.TextIOBase):
    """The alerts' stream: wipes the progress line before writing, so the two never share a line."""

    def __init__(self, out: TextIO, terminal: _Terminal) -> None:
        self.out = out
        self.terminal = terminal

    def write(self, text: str) -> int:
        self.terminal.clear()
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()
