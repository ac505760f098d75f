"""What `/netlog recent` and `top` found: the answer the services build and the renderers show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.core import commands as cmd
from bot.core import history
from bot.core.history import Window

SourceName = Literal["history", "logging"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What `recent` or `top` found, and where and over which hours it looked."""

    command: cmd.Recent | cmd.Top
    source: SourceName
    window: Window
    recent: history.Recent | None = None
    top: history.Top | None = None
    #: The Logs Explorer link with the same filter and hours (None without a known project).
    explorer: str | None = None
    #: Sentences about the answer's limits ("the history starts at …", "capped at …").
    notes: tuple[str, ...] = ()
    #: `top` only: whether the source covers the previous period (otherwise nothing is "new").
    compared: bool = True
