"""`netlog-bot demo`: half an hour of generated traffic through the whole pipeline, on a virtual
clock, printed as the Slack channels would receive it."""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path
from typing import TextIO

from bot.app import open_store
from bot.core import commands as cmd
from bot.core.events import RawMessage
from bot.demo.player import Timed, play, print_summary
from bot.demo.traffic import PROJECT, generate
from bot.render.history import answer_text
from bot.services.history import HistoryQueries
from bot.settings import EnvSettings, Settings, parse_yaml_config

#: Asked of the history at the end of the demo, as someone in the channel would.
DEMO_QUERIES = ("recent ns=payments since=1h", "top by=namespace since=1h")


def demo_settings(db_url: str) -> Settings:
    """The embedded demo configuration, whatever the environment says."""
    text = resources.files("bot.demo").joinpath("demo.yaml").read_text(encoding="utf-8")
    return Settings(EnvSettings(NETLOG_DB_URL=db_url), parse_yaml_config(text, "demo.yaml"))


def run_demo(out: TextIO, seed: int = 7) -> int:
    with tempfile.TemporaryDirectory(prefix="netlog-demo-") as folder:
        settings = demo_settings(f"sqlite:///{Path(folder) / 'demo.db'}")
        store = open_store(settings)
        try:
            print(
                "netlog-bot demo: half an hour of policy-action traffic from three GKE clusters, "
                "on a virtual clock.",
                file=out,
            )
            print("Each block is what a Slack channel would receive.\n", file=out)
            timeline = [Timed(a.at, RawMessage(a.data, a.message_id)) for a in generate(seed)]
            summary = play(timeline, settings, store, out)
            print_summary(summary, store, out)
            ended = summary.ended_at
            if ended is not None:
                # What `/netlog recent` and `top` answer from the flow history the demo filled.
                queries = HistoryQueries(
                    store.history, None, PROJECT, lambda: ended, store.grouping.history_started
                )
                for words in DEMO_QUERIES:
                    command = cmd.parse(words)
                    assert isinstance(command, cmd.Recent | cmd.Top)
                    print(f"\n── /netlog {words} ─────", file=out)
                    out.write(answer_text(queries.answer("demo", command)))
        finally:
            store.close()
    return 0
