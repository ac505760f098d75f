"""The metrics adapter: its exposition parses as Prometheus text, the scrape-time gauges come from
the bot's state, and a state that cannot be read leaves figures out rather than making some up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from bot.adapters.metrics import Metrics, State

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def scrape(metrics: Metrics) -> dict[str, float]:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain; version=0.0.4")
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if not sample.labels
    }


def test_gauges_are_read_at_each_scrape() -> None:
    metrics = Metrics()
    states = iter(
        [
            State(leading=True, open_groups=3, outbox=(7, NOW - timedelta(seconds=90)), pull_failures=2),
            State(leading=False, open_groups=0, outbox=(0, None), pull_failures=2),
        ]
    )
    metrics.watch(lambda: next(states), lambda: NOW)
    first = scrape(metrics)
    assert (first["netlog_leader"], first["netlog_open_groups"]) == (1, 3)
    assert (first["netlog_outbox_messages"], first["netlog_outbox_oldest_age_seconds"]) == (7, 90)
    assert first["netlog_pubsub_pull_failures_total"] == 2
    second = scrape(metrics)
    assert (second["netlog_leader"], second["netlog_outbox_oldest_age_seconds"]) == (0, 0)


def test_a_store_that_does_not_answer_leaves_the_outbox_figures_out() -> None:
    metrics = Metrics()
    metrics.watch(lambda: State(leading=True, open_groups=1, outbox=None, pull_failures=0), lambda: NOW)
    found = scrape(metrics)
    assert "netlog_outbox_messages" not in found
    assert found["netlog_leader"] == 1


def test_a_state_that_fails_to_read_still_serves_the_counters() -> None:
    metrics = Metrics()

    def broken() -> State:
        raise RuntimeError("database is locked")

    metrics.watch(broken, lambda: NOW)
    metrics.ingested(3, 2, 1, ["not_json"], [4.0, 9.0])
    found = scrape(metrics)
    assert "netlog_leader" not in found
    assert (found["netlog_entries_received_total"], found["netlog_entries_stored_total"]) == (3, 2)
    assert found["netlog_ingest_lag_seconds_count"] == 2


def test_two_bots_in_one_process_count_apart() -> None:
    one, other = Metrics(), Metrics()
    one.ingested(5, 5, 0, [], [])
    assert scrape(other)["netlog_entries_received_total"] == 0
