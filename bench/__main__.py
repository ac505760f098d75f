"""`make bench`: every storm stage of issue 8, each figure next to a baseline measured in the same run.

Inputs are generated storms (`bench/storm.py`): many namespaces and flows, both payload formats,
pods, nodes and IPs, redeliveries. Stages:

- core: parse, fold, and parse + fold against `orjson.loads` of the same bytes (`bench/core.py`);
- grouping: catch-up from a SQLite store, group state written, peak RSS for 1M distinct flows
  (`bench/grouping.py`);
- replay: `netlog-bot replay` of a generated file against decoding its lines (`bench/replay.py`);
- ingest (`--ingest`): the Pub/Sub emulator into SQLite and PostgreSQL against a bare batched pull
  (`bench/ingest.py`; starts the emulator unless PUBSUB_EMULATOR_HOST is set).
- history (`--history`): `/netlog recent` and `top` over a week of a 2,000-node cluster's flow
  history (~1.8M rollup rows) on SQLite and PostgreSQL, against the database summing the same rows
  (`bench/history.py`; loading it takes a minute or two per database).

Machines are noisy, so nothing here asserts a time; compare ratios between commits, measured on
the same machine. Each stage is also a module of its own (`python -m bench.grouping`, ...).
"""

from __future__ import annotations

import argparse
import os
import platform

from bench import grouping, history, ingest, replay
from bench.core import core_rows
from bench.report import Row, header, render
from bench.storm import StormShape, storm
from bot.cli import tune_gc


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--entries", type=int, default=200_000, help="storm size for core and grouping")
    parser.add_argument("--repeat", type=int, default=3, help="runs per core and history figure (best kept)")
    parser.add_argument("--replay", type=int, default=1_000_000, help="entries in the replayed file")
    parser.add_argument("--ingest", action="store_true", help="also measure ingest on the Pub/Sub emulator")
    parser.add_argument("--messages", type=int, default=60_000, help="messages per ingest stage")
    parser.add_argument("--history", action="store_true", help="also time recent and top over flow history")
    args = parser.parse_args()
    tune_gc()  # as `netlog-bot` runs: the figures are the bot's
    print(
        f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; storm of {args.entries:,} entries"
    )
    print(header())
    # Children first: Linux counts the parent's resident memory at the fork in a child's peak RSS
    # (even across exec), so they run while this process is still small.
    show([grouping.rss_row()])
    show(replay.replay_rows(args.replay))
    show(core_rows(list(storm(StormShape(entries=args.entries))), args.repeat))
    show(grouping.catch_up_rows(StormShape(entries=args.entries)))
    if args.ingest:
        with ingest.emulator() as host:
            os.environ["PUBSUB_EMULATOR_HOST"] = host
            show(ingest.measure(args.messages, profile=False))
    if args.history:
        show(history.measure(repeat=args.repeat))


def show(rows: list[Row]) -> None:
    for row in rows:
        print(render(row), flush=True)


if __name__ == "__main__":
    main()
