"""`/netlog recent` and `/netlog top` over a week of flow history, on SQLite and PostgreSQL, each
answer next to the database's own floor for reading the same rows, measured in the same run.

The history (`HistoryShape`) is 7 days x 24 hours of `flow_history` rollup rows (one per flow,
node, hour and muted-or-not) of one 2,000-node cluster, generated from a seed:

- 40,000 distinct denied flows over 3,000 namespaces, skewed: half the flows are policed in a few
  namespaces (Pareto), half anywhere. 70% ingress; peers are pods of other namespaces, nodes, bare
  IPs and the metadata server; the storm's ports and protocols (`bench/storm.py`). A flow is seen
  through its replicas' nodes: 1 to 60, heavy-tailed (Pareto, alpha 1.5).
- 5% of the flows are denied all week (a misconfigured client retrying); the others for a run of
  hours, heavy-tailed (most for an hour or two, some for days).
- Two DaemonSet flows denied on every node all week (Prometheus scraping node-exporter; the
  logging agent calling the metadata server): 4,000 rows an hour between them.
- Denied attempts per cell heavy-tailed (Pareto, alpha 1.16) with a day/night swing; 3% of the
  flows muted part-way through their run.

That is 1.82M rows and 47.8M denied attempts (each run prints its counts). The rows are loaded
after `Store.migrate()`: by executemany into a scratch SQLite file, by COPY into a scratch
PostgreSQL database (dropped after); `flow_history_daily` is then filled from the hours of the days before
the last one by `HistoryStore.close_days` (as the grouping's first commit after a midnight closes
the day; its time is printed), and PostgreSQL is VACUUM ANALYZEd as
autovacuum would leave it.

Asked at 35 minutes past the last hour (so it is partly filled), each answer as the commands build
it: `recent(flow_nodes(filter, window), limit)` and `top_of(sums(filter, window, by),
sums(filter, window.previous(), by), by, limit)`, the store reading whole days from the daily table:

- `recent since=1h limit=20`;
- `recent ns=<the namespace with the most rows that day> since=24h`;
- `top by=namespace since=24h`, and its previous 24 hours;
- `top by=flow since=7d` (its previous week is before the history: empty).

Baseline: `SELECT sum(attempts) FROM flow_history WHERE hour BETWEEN ...` over the hours the answer
reads (both periods for `top`; the namespace's rows only for `ns=`): the floor for reading those
rows. Each answer's total must equal it. Best of `--repeat` runs each; nothing asserts a time.

`python -m bench.history [--repeat N] [--explain]`, or `make bench BENCH_ARGS=--history`. With
`--explain`, the plans of the store's queries (EXPLAIN QUERY PLAN; EXPLAIN ANALYZE) and how an
answer's time splits between the store and the core are printed too.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.ingest import DEFAULT_PG_URL
from bench.report import Row, header, render
from bench.storm import PORTS, PROTOCOLS, START
from bot.adapters.store import Store
from bot.cli import tune_gc
from bot.core.history import FlowFilter, Recent, Top, TopBy, Window, hour_of, recent, top_of

CLUSTER = "prod-0"
COLUMNS = (
    "hour", "cluster", "direction", "source", "destination", "dest_port", "protocol", "node", "muted",
    "namespace", "attempts", "entries", "first_seen", "last_seen",
)  # fmt: skip
HistoryRow = tuple[int, str, str, str, str, int, str, str, bool, str, int, int, int, int]
METADATA_SERVER = "metadata-server (169.254.169.254)"
#: The storm's mean `count` per entry (60% are 1, the rest 2-59): entries per denied attempt.
ATTEMPTS_PER_ENTRY = 13


@dataclass(frozen=True, slots=True)
class HistoryShape:
    days: int = 7
    nodes: int = 2_000
    namespaces: int = 3_000
    flows: int = 40_000
    #: Share of flows denied all week; the others are denied for a heavy-tailed run of hours.
    persistent: float = 0.05
    #: Share of flows muted part-way through their run.
    muted: float = 0.03
    seed: int = 17

    @property
    def hours(self) -> int:
        return self.days * 24

    @property
    def now(self) -> datetime:
        """When the commands are asked: 35 minutes into the last hour, which is partly filled."""
        return START + timedelta(hours=self.hours - 1, minutes=35)


@dataclass(frozen=True, slots=True)
class _Flow:
    direction: str
    source: str
    destination: str
    dest_port: int
    protocol: str
    namespace: str  # the policed one
    nodes: tuple[str, ...]
    first: int  # hours since START, inclusive
    last: int
    rate: float  # attempts per node and hour, before the day/night swing and the noise
    muted_from: int  # the hour a mute started; past `last` for a flow never muted


def _namespace(rng: random.Random, shape: HistoryShape) -> str:
    skewed = min(int(rng.paretovariate(1.2)) - 1, shape.namespaces - 1)
    return f"team-{skewed if rng.random() < 0.5 else rng.randrange(shape.namespaces):04d}"


def _flow(rng: random.Random, shape: HistoryShape, nodes: Sequence[str]) -> _Flow:
    namespace = _namespace(rng, shape)
    policed = f"{namespace}/svc-{rng.randrange(40):02d}"
    kind = rng.random()
    if kind < 0.75:
        peer = f"{_namespace(rng, shape)}/svc-{rng.randrange(40):02d}"
    elif kind < 0.8:
        peer = f"node/{rng.choice(nodes)}"
    elif kind < 0.85:
        peer = METADATA_SERVER
    else:
        peer = f"10.{rng.randrange(64, 128)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    direction = "egress" if peer == METADATA_SERVER or rng.random() < 0.3 else "ingress"
    source, destination = (peer, policed) if direction == "ingress" else (policed, peer)
    protocol = rng.choices([p for p, _ in PROTOCOLS], [w for _, w in PROTOCOLS])[0]
    port = rng.choice(PORTS) if protocol in ("tcp", "udp") else 0
    replicas = tuple(rng.sample(nodes, min(int(rng.paretovariate(1.5)), 60, len(nodes))))
    if rng.random() < shape.persistent:
        first, last = 0, shape.hours - 1
    else:
        duration = min(int(rng.paretovariate(1.0)), shape.hours)
        start = rng.randrange(1 - duration, shape.hours)
        first, last = max(start, 0), min(start + duration - 1, shape.hours - 1)
    muted_from = rng.randint(first, last) if rng.random() < shape.muted else shape.hours
    rate = min(rng.paretovariate(1.16) * 8, 100_000.0)
    return _Flow(
        direction, source, destination, port, protocol, namespace, replicas, first, last, rate, muted_from
    )


def _flows(shape: HistoryShape) -> list[_Flow]:
    rng = random.Random(shape.seed)
    nodes = [f"gke-{CLUSTER}-pool-{n // 500}-{n:04d}" for n in range(shape.nodes)]
    week = (0, shape.hours - 1)
    daemonsets = [
        _Flow("ingress", "monitoring/prometheus", "monitoring/node-exporter", 9100, "tcp", "monitoring",
              tuple(nodes), *week, 8.0, shape.hours),
        _Flow("egress", "logging/fluent-bit", METADATA_SERVER, 80, "tcp", "logging",
              tuple(nodes), *week, 4.0, shape.hours),
    ]  # fmt: skip
    return daemonsets + [_flow(rng, shape, nodes) for _ in range(shape.flows)]


def history(shape: HistoryShape) -> Iterator[list[HistoryRow]]:
    """The rows, an hour at a time in key order (as the table's primary key sorts them)."""
    flows = _flows(shape)
    by_hour: list[list[_Flow]] = [[] for _ in range(shape.hours)]
    for flow in flows:
        for h in range(flow.first, flow.last + 1):
            by_hour[h].append(flow)
    rng = random.Random(shape.seed + 1)
    start = hour_of(START)
    for h, active in enumerate(by_hour):
        hour = start + h * 3600
        span = 3600 if h < shape.hours - 1 else shape.now.minute * 60
        # Busiest in the working day (UTC+1), quietest at night.
        swing = (1 + 0.6 * math.sin(2 * math.pi * ((START.hour + h + 1) % 24 - 9) / 24)) * span / 3600
        rows: list[HistoryRow] = []
        for flow in active:
            muted = h >= flow.muted_from
            for node in flow.nodes:
                attempts = max(1, int(flow.rate * swing * (0.3 + 1.4 * rng.random())))
                first = int(rng.random() * span)
                last = first + int(rng.random() * (span - first)) if attempts > 1 else first
                rows.append(
                    (
                        hour, CLUSTER, flow.direction, flow.source, flow.destination, flow.dest_port,
                        flow.protocol, node, muted, flow.namespace, attempts,
                        -(-attempts // ATTEMPTS_PER_ENTRY), (hour + first) * 1_000_000,
                        (hour + last) * 1_000_000,
                    )
                )  # fmt: skip
        rows.sort()
        yield rows


@dataclass(frozen=True, slots=True)
class Ask:
    """One command as typed, and how it is answered."""

    stage: str
    command: str
    since: timedelta
    by: TopBy | None = None  # None: `recent`
    limit: int = 20
    flow_filter: FlowFilter = field(default_factory=FlowFilter)

    def window(self, shape: HistoryShape) -> Window:
        return Window.since(shape.now, self.since)

    def answer(self, store: Store, shape: HistoryShape) -> Recent | Top:
        window = self.window(shape)
        if self.by is None:
            return recent(store.history.flow_nodes(self.flow_filter, window), self.limit)
        now = store.history.sums(self.flow_filter, window, self.by)
        before = store.history.sums(self.flow_filter, window.previous(), self.by)
        return top_of(now, before, self.by, self.limit)

    def hours_read(self, shape: HistoryShape) -> tuple[int, int]:
        window = self.window(shape)
        earliest = window.previous() if self.by is not None else window
        return earliest.first_hour, window.last_hour


def asks(busy_namespace: str) -> list[Ask]:
    return [
        Ask("recent 1h limit 20", "recent since=1h limit=20", timedelta(hours=1)),
        Ask(
            "recent ns= 24h",
            f"recent ns={busy_namespace} since=24h",
            timedelta(hours=24),
            flow_filter=FlowFilter(namespace=busy_namespace),
        ),
        Ask("top namespace 24h", "top by=namespace since=24h", timedelta(hours=24), "namespace", 10),
        Ask("top flow 7d", "top by=flow since=7d", timedelta(days=7), "flow", 10),
    ]


@dataclass(frozen=True, slots=True)
class Loaded:
    rows: int
    attempts: int
    #: The namespace with the most rows over the last day's window (what `ns=` reads most of).
    busy_namespace: str
    seconds: float
    #: The days summed into the daily table at load, and how long `close_days` took for them.
    closed_days: int
    closing: float


def load(store: Store, shape: HistoryShape) -> Loaded:
    last_day = Window.since(shape.now, timedelta(hours=24)).first_hour
    rows = attempts = 0
    per_namespace: Counter[str] = Counter()
    started = time.perf_counter()
    with _writer(store) as write:
        for hour_rows in history(shape):
            write(hour_rows)
            rows += len(hour_rows)
            attempts += sum(row[10] for row in hour_rows)
            if hour_rows and hour_rows[0][0] >= last_day:
                per_namespace.update(row[9] for row in hour_rows)
    # The days before `now`'s are over: summed into their daily rows as the grouping's first
    # commit after a midnight sums the day it closes (here, all but the last day at once).
    started_closing = time.perf_counter()
    with store.db.begin() as conn:
        days = store.history.close_days(conn, shape.now)
    closing = time.perf_counter() - started_closing
    if not store.db.is_sqlite:
        # What autovacuum does to a table after a bulk load: statistics, and the visibility map.
        with store.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE flow_history")
            conn.exec_driver_sql("VACUUM ANALYZE flow_history_daily")
    return Loaded(
        rows, attempts, per_namespace.most_common(1)[0][0], time.perf_counter() - started, days, closing
    )


@contextmanager
def _writer(store: Store) -> Iterator[Callable[[list[HistoryRow]], None]]:
    """One transaction; executemany of a plain INSERT on SQLite, COPY on PostgreSQL."""
    with store.db.begin() as conn:
        if store.db.is_sqlite:
            marks = ", ".join("?" for _ in COLUMNS)
            statement = f"INSERT INTO flow_history ({', '.join(COLUMNS)}) VALUES ({marks})"

            def insert(rows: list[HistoryRow]) -> None:
                conn.exec_driver_sql(statement, rows)

            yield insert
            return
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f"COPY flow_history ({', '.join(COLUMNS)}) FROM STDIN") as copy:

            def write(rows: list[HistoryRow]) -> None:
                for row in rows:
                    copy.write_row(row)

            yield write


def floor(store: Store, ask: Ask, shape: HistoryShape) -> int:
    """The baseline: the database summing the attempts of the rows the answer reads."""
    first, last = ask.hours_read(shape)
    sql = "SELECT sum(attempts) FROM flow_history WHERE hour BETWEEN :first AND :last"
    params: dict[str, Any] = {"first": first, "last": last}
    if ask.flow_filter.namespace is not None:
        sql += " AND namespace = :namespace"
        params["namespace"] = ask.flow_filter.namespace
    with store.db.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar() or 0)


def best(run: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` runs, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def measure_store(store: Store, name: str, shape: HistoryShape, repeat: int, explain: bool) -> list[Row]:
    loaded = load(store, shape)
    with store.db.connect() as conn:
        days = conn.exec_driver_sql("SELECT count(*) FROM flow_history_daily").scalar()
    print(
        f"history, {name}: {loaded.rows:,} rows ({days:,} daily), {loaded.attempts:,} denied attempts, "
        f"loaded in {loaded.seconds:.0f} s; closing {loaded.closed_days} days into daily rows took "
        f"{loaded.closing:.2f} s (the grouping commit after a midnight closes one)",
        flush=True,
    )
    rows = []
    for ask in asks(loaded.busy_namespace):
        answer = ask.answer(store, shape)
        total = answer.attempts if isinstance(answer, Recent) else answer.total + answer.previous_total
        read = floor(store, ask, shape)
        if total != read:
            raise SystemExit(
                f"{ask.command}, {name}: the answer counts {total:,} attempts, its rows {read:,}"
            )
        print(f"  {ask.command}: {_describe(answer, read)}", flush=True)
        if explain:
            _explain(store, ask, shape)
        figure = best(partial(ask.answer, store, shape), repeat)
        baseline = best(partial(floor, store, ask, shape), repeat)
        rows.append(
            Row(f"{ask.stage} ({name})", figure * 1e3, "ms", "sum(attempts), same rows", baseline * 1e3)
        )
    return rows


def _describe(answer: Recent | Top, attempts: int) -> str:
    if isinstance(answer, Recent):
        return f"{answer.flow_count:,} flows, {attempts:,} attempts"
    return f"{len(answer.rows) + answer.more:,} {answer.by} keys, {attempts:,} attempts over both periods"


def _explain(store: Store, ask: Ask, shape: HistoryShape) -> None:
    """The plans of the statements an answer runs, and its time in the store against the core."""
    statements: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        statements.append((statement, parameters))

    sa.event.listen(store.db.engine, "before_cursor_execute", capture)
    try:
        ask.answer(store, shape)
    finally:
        sa.event.remove(store.db.engine, "before_cursor_execute", capture)
    prefix = "EXPLAIN QUERY PLAN " if store.db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    for statement, parameters in statements:
        with store.db.connect() as conn:
            plan = conn.exec_driver_sql(prefix + statement, parameters).all()
        for line in plan:
            print(f"    {line[-1]}")
    window = ask.window(shape)
    started = time.perf_counter()
    if ask.by is None:
        rows = store.history.flow_nodes(ask.flow_filter, window)
        fetched = time.perf_counter()
        recent(rows, ask.limit)
        read = f"flow_nodes: {(fetched - started) * 1e3:,.0f} ms for {len(rows):,} rows"
    else:
        now = store.history.sums(ask.flow_filter, window, ask.by)
        before = store.history.sums(ask.flow_filter, window.previous(), ask.by)
        fetched = time.perf_counter()
        top_of(now, before, ask.by, ask.limit)
        read = f"sums: {(fetched - started) * 1e3:,.0f} ms for {len(now) + len(before):,} keys"
    done = time.perf_counter()
    print(f"    {read}; the core's answer: {(done - fetched) * 1e3:,.0f} ms")


def measure(shape: HistoryShape = HistoryShape(), repeat: int = 3, explain: bool = False) -> list[Row]:
    print(
        f"history: {shape.days} days x 24 h of a {shape.nodes:,}-node cluster, {shape.flows:,} flows over "
        f"{shape.namespaces:,} namespaces (+2 DaemonSet flows on every node); best of {repeat}; "
        "ratio: the answer's time over the database summing the same rows (lower is better)",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as directory:
        store = Store(f"sqlite:///{Path(directory) / 'history.db'}", scratch=True)
        store.migrate()
        rows = measure_store(store, "SQLite", shape, repeat, explain)
        store.close()
    with pg_database() as url:
        store = Store(url)
        store.migrate()
        rows += measure_store(store, "PostgreSQL", shape, repeat, explain)
        store.close()
    return rows


@contextmanager
def pg_database() -> Iterator[str]:
    """A scratch database on the tests' server (NETLOG_TEST_PG_URL or its default), dropped after."""
    base = sa.make_url(os.environ.get("NETLOG_TEST_PG_URL", DEFAULT_PG_URL))
    name = f"netlog_bench_history_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the best is kept)")
    parser.add_argument("--explain", action="store_true", help="print query plans and the store/core split")
    args = parser.parse_args(argv)
    tune_gc()  # as `netlog-bot` runs: the figures are the bot's
    rows = measure(repeat=args.repeat, explain=args.explain)
    print(header())
    for row in rows:
        print(render(row))


if __name__ == "__main__":
    main()
