"""`netlog-bot replay`: LogEntries from a file (JSON lines, push envelopes, or `gcloud logging read
--format=json`) through the whole pipeline, each at its own timestamp, printed as alerts."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from bot.app import open_store, utcnow
from bot.core.events import EntryParser, RawMessage, RejectedEntry
from bot.demo.player import Timed, play, print_summary
from bot.pipeline import entry_parser
from bot.settings import Settings, SettingsError


def run_replay(source: TextIO, settings: Settings, out: TextIO, db_url: str | None = None) -> int:
    """Replays LogEntries (JSON lines, push envelopes, or `gcloud logging read --format=json`)."""
    with tempfile.TemporaryDirectory(prefix="netlog-replay-") as folder:
        url = db_url or f"sqlite:///{Path(folder) / 'replay.db'}"
        store = open_store(settings, url)
        try:
            timeline = replay_timeline(read_messages(source), entry_parser(settings.networks))
            summary = play(timeline, settings, store, out)
            print_summary(summary, store, out)
        finally:
            store.close()
    return 0


def read_messages(source: TextIO) -> Iterator[RawMessage]:
    """A JSON array's items, or else each non-blank line, as raw messages named by their place."""
    text = source.read()
    if text.lstrip().startswith("["):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise SettingsError(f"the input looks like a JSON array but is not valid JSON: {error}") from None
        for number, entry in enumerate(document, start=1):
            yield RawMessage(json.dumps(entry).encode(), f"item {number}")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            # surrogateescape: stdin in a C/POSIX locale keeps undecodable bytes; they become rejects
            yield RawMessage(line.encode("utf-8", "surrogateescape"), f"line {number}")


def replay_timeline(messages: Iterator[RawMessage], parser: EntryParser) -> list[Timed]:
    """Each entry arrives at its own timestamp; unreadable ones arrive with the entry before them."""
    timeline: list[Timed] = []
    unplaced: list[RawMessage] = []
    for message in messages:
        try:
            at = parser.parse(message.data).timestamp
        except RejectedEntry:
            unplaced.append(message)
            continue
        timeline.append(Timed(at, message))
    timeline.sort(key=lambda item: item.at)
    start = timeline[0].at if timeline else utcnow()
    return [Timed(start, message) for message in unplaced] + timeline
