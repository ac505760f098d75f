"""`/netlog recent` and `top` (and their terminal twins): which source answers, and the answer.

The bot's own flow history answers whenever it covers the window: it starts at the first batch the
bot grouped (`GroupStateStore.history_started`). When the window reaches back before that (the bot
was installed yesterday and someone asks for `since=7d`), or when the user asks with
`source=logging`, Cloud Logging answers instead, through the same aggregation. Every answer says
which source it came from, which hours it read, and what it could not see.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from bot.adapters.cloudlogging import LoggingError
from bot.core import commands as cmd
from bot.core import history
from bot.core.answers import Answer, SourceName
from bot.core.history import FlowFilter, FlowNode, TopBy, Window
from bot.core.logquery import history_url


class HistoryReader(Protocol):
    def flow_nodes(self, flow_filter: FlowFilter, window: Window) -> list[FlowNode]: ...

    def sums(self, flow_filter: FlowFilter, window: Window, by: TopBy) -> dict[str, int]: ...


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
        started: Callable[[], datetime | None],
    ) -> None:
        self.store = store
        self.logging = logging
        self.project = project
        self.clock = clock
        self.started = started

    def answer(self, user: str, command: cmd.Recent | cmd.Top) -> Answer:
        """Raises `NoAnswer`, or `LoggingError` (a sentence) when Cloud Logging was asked for by
        name and could not answer. Asked on its own account, a Cloud Logging that fails leaves the
        answer to the history, which says what it is missing."""
        window = Window.since(self.clock(), command.since)
        started = self.started()
        notes: list[str] = []
        source = self._source(command, window, started, notes)
        if source == "logging" and command.source == "auto":
            try:
                return self._answer(user, command, window, source, started, notes)
            except LoggingError as error:
                since = f"starts at {started:%Y-%m-%d %H:%M} UTC" if started else "holds nothing yet"
                notes = [
                    f"Cloud Logging could not answer ({error}), so this is the bot's history alone, "
                    f"which {since}."
                ]
                source = "history"
        return self._answer(user, command, window, source, started, notes)

    def _answer(
        self,
        user: str,
        command: cmd.Recent | cmd.Top,
        window: Window,
        source: SourceName,
        started: datetime | None,
        notes: list[str],
    ) -> Answer:
        link = self._link(command.flow_filter, window)
        flow_filter = command.flow_filter
        if isinstance(command, cmd.Recent):
            rows = self._rows(user, source, flow_filter, window, notes)
            found = history.recent(rows, command.limit)
            return Answer(command, source, window, recent=found, explorer=link, notes=tuple(notes))
        before = window.previous()
        compared = True
        if source == "history":
            now_sums = self.store.sums(flow_filter, window, command.by)
            before_sums = self.store.sums(flow_filter, before, command.by)
            if started is None or started >= before.end:
                compared = False
                notes.append("The history does not reach the previous period: nothing to compare with.")
            elif started > before.start:
                notes.append(
                    f"The bot's history starts at {started:%Y-%m-%d %H:%M} UTC, inside the previous "
                    "period: changes are against the part of it the history holds."
                )
        else:
            now_sums = history.sum_by(self._rows(user, source, flow_filter, window, notes), command.by)
            before_sums = history.sum_by(self._rows(user, source, flow_filter, before, notes), command.by)
            if notes:  # a period was capped: the newest entries of each, not comparable totals
                compared = False
        found_top = history.top_of(now_sums, before_sums, command.by, command.limit, window.scale)
        return Answer(
            command, source, window, top=found_top, explorer=link, notes=tuple(notes), compared=compared
        )

    def _rows(
        self, user: str, source: SourceName, flow_filter: FlowFilter, window: Window, notes: list[str]
    ) -> list[FlowNode]:
        if source == "history":
            return self.store.flow_nodes(flow_filter, window)
        assert self.logging is not None  # `_source` chose it
        found = self.logging.flow_nodes(user, flow_filter, window)
        if found.truncated and not notes:
            notes.append(
                "Cloud Logging had more entries than the bot reads for one answer "
                "(the counts are of the newest): open Logs Explorer for the rest."
            )
        return found.rows

    def _source(
        self, command: cmd.Recent | cmd.Top, window: Window, started: datetime | None, notes: list[str]
    ) -> SourceName:
        if command.source == "logging":
            if self.logging is None:
                raise NoAnswer(
                    "Cloud Logging is not set up for this bot: set GOOGLE_CLOUD_PROJECT (and give the "
                    "bot roles/logging.viewer there), or ask without `source=logging`."
                )
            return "logging"
        covered = started is not None and started <= window.start
        if command.source == "history" or covered:
            if not covered:
                notes.append(_partial(started))
            return "history"
        if self.logging is not None:
            return "logging"
        notes.append(
            _partial(started) + " Cloud Logging is not set up (GOOGLE_CLOUD_PROJECT) to fill the gap."
        )
        return "history"

    def _link(self, flow_filter: FlowFilter, window: Window) -> str | None:
        if not self.project:
            return None
        return history_url(self.project, flow_filter, window.start, window.end)


def _partial(started: datetime | None) -> str:
    if started is None:
        return "The bot's history holds nothing yet: it fills as the bot groups denies."
    return (
        f"The bot's history starts at {started:%Y-%m-%d %H:%M} UTC, after the start of this window: "
        "denies before it are not counted."
    )
