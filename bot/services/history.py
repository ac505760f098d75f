"""`/netlog recent` and `top` (and their terminal twins): which source answers, and the answer.

The bot's own flow history answers whenever it covers the window. When the window reaches back
before the history starts (the bot was installed yesterday and someone asks for `since=7d`), or
when the user asks with `source=logging`, Cloud Logging answers instead, through the same
aggregation. Every answer says which source it came from and which hours it read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from bot.adapters.cloudlogging import LoggingError
from bot.core import commands as cmd
from bot.core import history
from bot.core.answers import Answer, SourceName
from bot.core.history import FlowFilter, FlowNode, Window
from bot.core.logquery import history_url


class HistoryReader(Protocol):
    def flow_nodes(self, flow_filter: FlowFilter, window: Window) -> list[FlowNode]: ...

    def earliest(self) -> datetime | None: ...


class LoggingRows(Protocol):
    @property
    def rows(self) -> list[FlowNode]: ...

    @property
    def truncated(self) -> bool: ...


class LoggingReader(Protocol):
    def flow_nodes(self, user: str, flow_filter: FlowFilter, window: Window) -> LoggingRows: ...


class NoAnswer(Exception):
    """A query nobody can answer as asked; `str()` is a sentence saying what to do instead."""


class HistoryQueries:
    def __init__(
        self,
        store: HistoryReader,
        logging: LoggingReader | None,
        project: str | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.logging = logging
        self.project = project
        self.clock = clock

    def answer(self, user: str, command: cmd.Recent | cmd.Top) -> Answer:
        """Raises `NoAnswer`, or `LoggingError` (a sentence) when Cloud Logging was asked for by
        name and could not answer. Asked on its own account, a Cloud Logging that fails leaves the
        answer to the history, which says what it is missing."""
        window = Window.since(self.clock(), command.since)
        notes: list[str] = []
        source = self._source(command, window, notes)
        if source == "logging" and command.source == "auto":
            try:
                return self._answer(user, command, window, source, notes)
            except LoggingError as error:
                earliest = self.store.earliest()
                since = f"starts at {earliest:%Y-%m-%d %H:%M} UTC" if earliest else "holds nothing yet"
                notes = [
                    f"Cloud Logging could not answer ({error}), so this is the bot's history alone, "
                    f"which {since}."
                ]
                source = "history"
        return self._answer(user, command, window, source, notes)

    def _answer(
        self, user: str, command: cmd.Recent | cmd.Top, window: Window, source: SourceName, notes: list[str]
    ) -> Answer:
        read = self._reader(user, source, command.flow_filter, notes)
        link = self._link(command.flow_filter, window)
        if isinstance(command, cmd.Recent):
            found = history.recent(read(window), command.limit)
            return Answer(command, source, window, recent=found, explorer=link, notes=tuple(notes))
        before = window.previous()
        compared = True
        if source == "history":
            earliest = self.store.earliest()
            if earliest is None or earliest >= before.end:
                compared = False
                notes.append("The history does not reach the previous period: nothing to compare with.")
            elif earliest > before.start:
                notes.append(
                    f"The bot's history starts at {earliest:%Y-%m-%d %H:%M} UTC, inside the previous "
                    "period: changes are against the part of it the history holds."
                )
        found_top = history.top(read(window), read(before), command.by, command.limit)
        return Answer(
            command, source, window, top=found_top, explorer=link, notes=tuple(notes), compared=compared
        )

    def _reader(
        self, user: str, source: SourceName, flow_filter: FlowFilter, notes: list[str]
    ) -> Callable[[Window], list[FlowNode]]:
        if source == "history":
            return lambda window: self.store.flow_nodes(flow_filter, window)
        logging = self.logging
        assert logging is not None  # `_source` chose it

        def read(window: Window) -> list[FlowNode]:
            found = logging.flow_nodes(user, flow_filter, window)
            if found.truncated and not notes:
                notes.append(
                    "Cloud Logging had more entries than the bot reads for one answer "
                    "(the counts are of the newest): open Logs Explorer for the rest."
                )
            return found.rows

        return read

    def _source(self, command: cmd.Recent | cmd.Top, window: Window, notes: list[str]) -> SourceName:
        if command.source == "logging":
            if self.logging is None:
                raise NoAnswer(
                    "Cloud Logging is not set up for this bot: set GOOGLE_CLOUD_PROJECT (and give the "
                    "bot roles/logging.viewer there), or ask without `source=logging`."
                )
            return "logging"
        if command.source == "history":
            return "history"
        earliest = self.store.earliest()
        if earliest is not None and earliest <= window.start:
            return "history"
        if self.logging is not None:
            return "logging"
        if earliest is not None:
            notes.append(
                f"The bot's history starts at {earliest:%Y-%m-%d %H:%M} UTC, after the start of this "
                "window, and Cloud Logging is not set up (GOOGLE_CLOUD_PROJECT): older denies are "
                "not counted."
            )
        return "history"

    def _link(self, flow_filter: FlowFilter, window: Window) -> str | None:
        if not self.project:
            return None
        return history_url(self.project, flow_filter, window.start, window.end)
