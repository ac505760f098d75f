"""The core stage: parsing and folding a storm, against `orjson.loads` of the same bytes.

Each pass starts from a fresh `EntryParser` and `Grouper` (a storm's start, memos cold) and takes
the messages in batches of 1,000, as ingest does. The baseline decodes the same bytes and throws
the result away: the floor for anything that reads a LogEntry in Python. Best of `repeat` passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import orjson

from bench.report import Row
from bench.storm import START
from bot.core.events import NetworkNames, PolicyEvent
from bot.core.grouping import Grouper, GroupingPolicy
from bot.core.routing import Route, RoutingTable
from bot.pipeline import entry_parser

BATCH = 1_000
#: A team-sized configuration: a few routes with globs, one that continues, the default channel.
ROUTING = RoutingTable(
    (
        Route((("namespace", "team-00*"),), "C0PLATFORM"),
        Route((("namespace", "team-01*"), ("direction", "ingress")), "C0PAYMENTS"),
        Route((("dest_port", "5432"),), "C0DATA", continue_=True),
        Route((("cluster", "prod-2"), ("namespace", "team-1*")), "C0EDGE"),
    ),
    "C0NETLOG",
)
NETWORKS = NetworkNames.from_mapping({"169.254.169.254/32": "metadata-server", "203.0.0.0/16": "partner"})


def best(run: Callable[[], object], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return min(timings)


def core_rows(bodies: Sequence[bytes], repeat: int = 3) -> list[Row]:
    batches = [bodies[start : start + BATCH] for start in range(0, len(bodies), BATCH)]
    n = len(bodies)

    def decode() -> None:
        loads = orjson.loads
        for body in bodies:
            loads(body)

    def parse() -> list[list[PolicyEvent]]:
        parser = entry_parser(NETWORKS)
        return [[parser.parse(body) for body in batch] for batch in batches]

    parsed = parse()

    def fold() -> None:
        grouper = Grouper(GroupingPolicy(), ROUTING)
        for events in parsed:
            grouper.fold_all(events, START)

    def parse_and_fold() -> None:
        parser = entry_parser(NETWORKS)
        grouper = Grouper(GroupingPolicy(), ROUTING)
        for batch in batches:
            grouper.fold_all([parser.parse(body) for body in batch], START)

    baseline = n / best(decode, repeat)
    return [
        Row("parse", n / best(parse, repeat), "entries/s", "orjson.loads of the same bytes", baseline),
        Row(
            "fold (parsed events)",
            n / best(fold, repeat),
            "events/s",
            "orjson.loads of the same bytes",
            baseline,
        ),
        Row(
            "core: parse + fold",
            n / best(parse_and_fold, repeat),
            "entries/s",
            "orjson.loads of the same bytes",
            baseline,
        ),
    ]
