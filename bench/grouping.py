"""Grouping at storm scale, each figure next to a baseline from the same run:

- fold: `Grouper.fold` per event vs `parse_message` of the same entries (fold must stay cheaper).
- catch-up: `GroupingWorker.catch_up` over stored storm events vs reading the same events back.
- state: bytes and row writes of group state per 100k events vs the raw entries' bytes.
- memory: peak RSS of a process folding 1M distinct flows over 2,000 namespaces vs the same process
  folding nothing (the interpreter and its imports).

`python -m bench.grouping [entries]` prints the rows. Nothing here asserts a time.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.report import Row, header, render
from bench.storm import START, StormShape, storm
from bot.adapters.store import Store
from bot.core.events import Endpoint, NetworkNames, PolicyEvent, RawMessage
from bot.core.grouping import Grouper, GroupingPolicy
from bot.core.routing import Route, RoutingTable
from bot.pipeline import GroupingWorker, entry_parser, store_messages

NETWORKS = NetworkNames.from_mapping({"169.254.169.254/32": "metadata-server"})
#: A few routes of the kinds a real config has: a team prefix, a cluster, a port that fans out.
ROUTING = RoutingTable(
    (
        Route((("namespace", "team-00*"),), "#team-zero"),
        Route((("cluster", "prod-1"), ("dest_port", "5432")), "#databases", continue_=True),
        Route((("namespace", "team-01*"),), "#team-one"),
    ),
    "#netlog",
)
#: Grouping state lives in these tables (before and after the incremental layout).
STATE_TABLES = ("groups", "group_flows")


def fold_row(shape: StormShape) -> Row:
    """µs per event folded, against µs per entry parsed (both on the same entries)."""
    bodies = list(storm(shape))
    parser = entry_parser(NETWORKS)  # as ingest parses: one parser for the whole storm
    started = time.perf_counter()
    events = [parser.parse(body) for body in bodies]
    parse = time.perf_counter() - started
    grouper = Grouper(GroupingPolicy(), ROUTING)
    started = time.perf_counter()
    grouper.fold_all(events, START)  # as the grouping worker folds a step
    fold = time.perf_counter() - started
    n = len(events)
    return Row(
        "fold (µs/event, lower is better)", fold / n * 1e6, "µs", "parse of the same entries", parse / n * 1e6
    )


@dataclass(slots=True)
class _Writes:
    """Parameter bytes and rows sent to the state tables, counted at the driver's door."""

    bytes: int = 0
    rows: int = 0

    def __call__(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb not in ("INSERT", "UPDATE") or not any(table in statement for table in STATE_TABLES):
            return
        rows = parameters if many else [parameters]
        self.rows += len(rows)
        self.bytes += sum(_size(value) for row in rows for value in _values(row))


def _values(row: Any) -> Iterator[Any]:
    return iter(row.values()) if isinstance(row, dict) else iter(row)


def _size(value: object) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes):
        return len(value)
    return 8


def catch_up_rows(shape: StormShape) -> list[Row]:
    """Catch-up events/s from a SQLite store, and the state it wrote per 100k events. Two catch-ups
    over copies of one store: the timed one without the write counter, which costs time itself."""
    with tempfile.TemporaryDirectory() as directory:
        timed, counted = Path(directory) / "timed.db", Path(directory) / "counted.db"
        store = Store(f"sqlite:///{timed}")
        store.migrate()
        raw = 0
        parser = entry_parser(NETWORKS)
        batch: list[RawMessage] = []
        for body in storm(shape):
            raw += len(body)
            batch.append(RawMessage(body))
            if len(batch) == 5_000:
                store_messages(store, batch, parser, START)
                batch = []
        store_messages(store, batch, parser, START)
        store.close()  # the last connection out checkpoints the WAL: the file alone is the store
        shutil.copyfile(timed, counted)

        store = Store(f"sqlite:///{timed}")
        n = len(store.events.read(0, shape.entries))
        started = time.perf_counter()
        store.events.read(0, shape.entries)
        read = time.perf_counter() - started
        worker = GroupingWorker(store, Grouper(GroupingPolicy(), ROUTING))
        started = time.perf_counter()
        worker.catch_up(START + timedelta(seconds=1))
        elapsed = time.perf_counter() - started
        store.close()

        store = Store(f"sqlite:///{counted}")
        writes = _Writes()
        sa.event.listen(store.db.engine, "before_cursor_execute", writes)
        GroupingWorker(store, Grouper(GroupingPolicy(), ROUTING)).catch_up(START + timedelta(seconds=1))
        store.close()
    per_100k = 100_000 / n
    return [
        Row("catch-up from the store", n / elapsed, "events/s", "reading the same events", n / read),
        Row(
            "state written per 100k events",
            writes.bytes * per_100k,
            "bytes",
            "raw entries' bytes",
            raw * per_100k,
        ),
        Row("state row writes per 100k events", writes.rows * per_100k, "rows", "events folded", 100_000),
    ]


def distinct_flows(flows: int, namespaces: int) -> Iterator[PolicyEvent]:
    """`flows` denies, each a flow of its own, spread over `namespaces`; made one at a time."""
    for n in range(flows):
        namespace = f"team-{n % namespaces:04d}"
        yield PolicyEvent(
            insert_id=f"{n:016x}",
            timestamp=START + timedelta(microseconds=n * 500),
            direction="ingress",
            disposition="deny",
            protocol="tcp",
            src=Endpoint(
                "pod",
                ip=f"10.{64 + n % 64}.{n // 256 % 256}.{n % 256}",
                namespace=f"peer-{n % 997}",
                workload=f"client-{n // namespaces:06d}",
            ),
            dest=Endpoint("pod", ip="10.200.0.1", namespace=namespace, workload=f"svc-{n % 40:02d}"),
            dest_port=8000 + n % 1000,
            cluster="prod-0",
            node=f"gke-prod-0-pool-{n % 100:03d}",
        )


def _child_rss(flows: int, namespaces: int) -> None:
    """Runs in the subprocess: fold, then print the peak RSS in bytes."""
    grouper = Grouper(GroupingPolicy(), ROUTING)
    for n, event in enumerate(distinct_flows(flows, namespaces)):
        grouper.fold(event, START)
        if n % 2_000 == 0:
            grouper.changes()  # as the worker saves after each batch
    tracked = sum(len(group.flows) for group in grouper.groups.values())
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, tracked)


def rss_row(flows: int = 1_000_000, namespaces: int = 2_000) -> Row:
    def peak(count: int) -> int:
        command = [sys.executable, "-m", "bench.grouping", "--rss-child", str(count), str(namespaces)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()
        return int(out[0])

    return Row(
        f"peak RSS, {flows:,} flows / {namespaces:,} ns",
        peak(flows) / 1e6,
        "MB",
        "the same process folding nothing",
        peak(0) / 1e6,
    )


def rows(entries: int = 100_000) -> list[Row]:
    # Memory first: a child's peak RSS (ru_maxrss) starts from its parent's at the fork, so the
    # parent must still be small; the baseline child shows that floor.
    memory = rss_row()
    shape = StormShape(entries=entries)
    return [fold_row(shape), *catch_up_rows(shape), memory]


def main(argv: list[str]) -> None:
    if argv[:1] == ["--rss-child"]:
        _child_rss(int(argv[1]), int(argv[2]))
        return
    print(header())
    for row in rows(int(argv[0]) if argv else 100_000):
        print(render(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
