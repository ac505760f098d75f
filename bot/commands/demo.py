"""`netlog-bot demo`: half an hour of generated traffic through the whole pipeline, on a virtual
clock, printed as the Slack channels would receive it."""

from __future__ import annotations

import tempfile
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TextIO

from bot.adapters.store import Store
from bot.app import open_store
from bot.core import commands as cmd
from bot.core.digest import Period
from bot.core.events import RawMessage
from bot.core.history import HOUR
from bot.demo.player import Timed, play, print_summary
from bot.demo.traffic import PROJECT, generate
from bot.render.chart import render_chart
from bot.render.digest import CHART_TITLE, digest_text
from bot.render.history import answer_text
from bot.services.digest import Digests
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
                print_digest(settings, store, ended, out)
        finally:
            store.close()
    return 0


#: Where the demo leaves its digest's chart: outside the checkout and the demo's own temporary folder.
DEMO_CHART = Path(tempfile.gettempdir()) / "netlog-demo-digest.png"


def print_digest(settings: Settings, store: Store, ended: datetime, out: TextIO) -> None:
    """The digest of the demo's traffic, as `netlog-bot digest` prints it, and its chart."""
    period = Period.ending(ended + HOUR, HOUR)  # the whole hour the demo's half hour falls in
    print(f"\n── netlog-bot digest --until {period.end:%Y-%m-%dT%H:%MZ} --since 1h ─────", file=out)
    for digest in Digests(store, settings.routing, settings.file.digest.channels).make(period):
        out.write(digest_text(digest, PROJECT))
        DEMO_CHART.write_bytes(render_chart(digest.series, CHART_TITLE))
        print(f"Chart: {DEMO_CHART}", file=out)
