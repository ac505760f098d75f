"""`netlog-bot recent …` and `netlog-bot top …`: the `/netlog` answers in a terminal, from the
store at NETLOG_DB_URL (and Cloud Logging, as in Slack), for operators and scripts."""

from __future__ import annotations

import getpass
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.adapters.cloudlogging import LoggingError
from bot.adapters.store import Store, StoreUnreadable
from bot.core import commands as cmd
from bot.render.history import answer_text
from bot.services import history_queries
from bot.services.history import NoAnswer
from bot.settings import Settings


def run_query(settings: Settings, verb: str, words: list[str], out: TextIO, err: TextIO) -> int:
    """Exit 0 with the answer, or 2 with a sentence (bad words, no store, Cloud Logging refused)."""
    try:
        command = cmd.parse(shlex.join([verb, *words]))
    except cmd.CommandError as error:
        print(f"netlog-bot {verb}: {_plain(str(error))}", file=err)
        return 2
    assert isinstance(command, cmd.Recent | cmd.Top)
    if missing_store(settings.env.db_url, verb, err):
        return 2
    store = Store(settings.env.db_url)
    try:
        store.ready_to_read()
        queries = history_queries(settings, store, lambda: datetime.now(UTC))
        answer = queries.answer(f"terminal:{getpass.getuser()}", command)
    except (NoAnswer, LoggingError, StoreUnreadable) as error:
        print(f"netlog-bot {verb}: {_plain(str(error))}", file=err)
        return 2
    finally:
        store.close()
    out.write(answer_text(answer))
    return 0


def missing_store(url: str, verb: str, err: TextIO) -> bool:
    """For the commands that read the store: says so, and True, when NETLOG_DB_URL names a SQLite
    file that is not there (opening it would create an empty store and answer "nothing")."""
    missing = missing_sqlite_file(url)
    if missing:
        print(
            f"netlog-bot {verb}: NETLOG_DB_URL names {missing}, which does not exist: point it at the "
            "bot's store",
            file=err,
        )
    return missing is not None


def missing_sqlite_file(url: str) -> str | None:
    """A SQLite URL whose file is missing: reading it would create an empty store and answer
    "nothing denied", which is worse than saying so."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or ":memory:" in url:
        return None
    path = Path(url[len(prefix) :].split("?", 1)[0])
    return None if path.exists() else str(path)


def _plain(sentence: str) -> str:
    return sentence.replace("`", "")
