"""The bot's Prometheus metrics, served on `/metrics` of its HTTP port.

One `Metrics` per process, on its own registry (not prometheus_client's global one: nothing is
registered at import time, and tests can build as many as they like). Counters are bumped where
things happen, through the few methods below, each called once per batch or per call, never per
event of a storm. What is cheaper to read than to track (open groups, the outbox backlog, the lease)
is read when Prometheus scrapes, through `State`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

#: The classic text format `generate_latest` writes, which every Prometheus version reads (newer
#: clients label it 1.0.0, which older servers do not know).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LAG_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 6 * 3600, 24 * 3600)


@dataclass(frozen=True, slots=True)
class State:
    """What a scrape reads from the running bot. `outbox` is None when the store did not answer."""

    leading: bool
    open_groups: int
    outbox: tuple[int, datetime | None] | None
    pull_failures: int


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.received = Counter(
            "netlog_entries_received",
            "Pub/Sub messages received (stored, duplicate or rejected)",
            registry=registry,
        )
        self.stored = Counter("netlog_entries_stored", "Deny/allow entries stored", registry=registry)
        self.duplicates = Counter(
            "netlog_entries_duplicate",
            "Entries already stored (redelivery; same insertId)",
            registry=registry,
        )
        self.rejected = Counter(
            "netlog_entries_rejected", "Messages kept as rejects, by reason", ["reason"], registry=registry
        )
        self.lag = Histogram(
            "netlog_ingest_lag_seconds",
            "Time from an entry's timestamp to its storing (a sample of each batch)",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.slack_calls = Counter(
            "netlog_slack_calls",
            "Slack Web API calls by method and outcome",
            ["method", "outcome"],
            registry=registry,
        )
        self.slack_rate_limited = Counter(
            "netlog_slack_rate_limited", "Slack answers of 429 (Retry-After honoured)", registry=registry
        )
        self.commands = Counter(
            "netlog_commands",
            "/netlog commands by name and outcome",
            ["command", "outcome"],
            registry=registry,
        )

    def ingested(
        self, received: int, stored: int, duplicates: int, rejects: Iterable[str], lags: Sequence[float]
    ) -> None:
        """One stored batch: its counts, each reject's reason code, and the lag of its entries."""
        self.received.inc(received)
        self.stored.inc(stored)
        self.duplicates.inc(duplicates)
        for reason in rejects:
            self.rejected.labels(reason).inc()
        for lag in lags:
            self.lag.observe(max(lag, 0.0))

    def slack_call(self, method: str, outcome: str) -> None:
        self.slack_calls.labels(method, outcome).inc()
        if outcome == "rate_limited":
            self.slack_rate_limited.inc()

    def command(self, name: str, outcome: str) -> None:
        self.commands.labels(name, outcome).inc()

    def watch(self, state: Callable[[], State], clock: Callable[[], datetime]) -> None:
        """Read `state` at each scrape for the gauges (once per Metrics)."""
        self.registry.register(_StateCollector(state, clock))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE


class _StateCollector(Collector):
    def __init__(self, state: Callable[[], State], clock: Callable[[], datetime]) -> None:
        self.state = state
        self.clock = clock

    def describe(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        return []  # read at scrape time only: registering must not call `state`

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            state = self.state()
        except Exception:
            log.warning("metrics: could not read the bot's state", exc_info=True)
            return
        yield GaugeMetricFamily(
            "netlog_leader",
            "1 on the replica that groups and delivers (holds the alerts lease)",
            value=int(state.leading),
        )
        yield GaugeMetricFamily(
            "netlog_open_groups", "Alert groups open in memory (on the leader)", value=state.open_groups
        )
        yield CounterMetricFamily(
            "netlog_pubsub_pull_failures",
            "Pub/Sub Pull calls that failed (each is retried)",
            value=state.pull_failures,
        )
        if state.outbox is None:
            return  # the store did not answer: no figure rather than a wrong one
        count, since = state.outbox
        yield GaugeMetricFamily("netlog_outbox_messages", "Slack messages queued, not yet sent", value=count)
        age = (self.clock() - since).total_seconds() if since is not None else 0.0
        yield GaugeMetricFamily(
            "netlog_outbox_oldest_age_seconds",
            "Age of the oldest queued Slack message (0 when none)",
            value=max(age, 0.0),
        )
