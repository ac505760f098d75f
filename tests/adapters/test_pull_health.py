"""The subscriber's view of Pub/Sub's health, with monotonic time passed in: what `/readyz` says and
what the log says while pulls fail, and once they answer again."""

from __future__ import annotations

import logging

import pytest
from google.api_core import exceptions as google_errors

from bot.adapters.pubsub import FAILING_AFTER, PullHealth

SUBSCRIPTION = "projects/p/subscriptions/s"


def unavailable() -> google_errors.ServiceUnavailable:
    return google_errors.ServiceUnavailable("failed to connect to all addresses\nmore detail")  # type: ignore[no-untyped-call]


def test_not_ready_until_pubsub_first_answers() -> None:
    health = PullHealth(SUBSCRIPTION)
    assert health.ready(0.0) == (False, "waiting for Pub/Sub's first answer")
    health.failed(unavailable(), 1.0)
    assert health.ready(2.0) == (
        False,
        "waiting for Pub/Sub's first answer (503 failed to connect to all addresses)",
    )
    health.ok(3.0)
    assert health.ready(3.0) == (True, "pulling")


def test_a_blip_stays_ready_a_run_of_failures_does_not(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "bot.adapters.pubsub")
    health = PullHealth(SUBSCRIPTION)
    health.ok(0.0)
    for second in range(1, 10):
        health.failed(unavailable(), float(second))
    assert health.ready(10.0) == (True, "pulling")  # 9 s of failures: a blip
    assert [r.levelname for r in caplog.records] == ["INFO"]  # the first failure only, not one each
    for second in range(10, 40):
        health.failed(unavailable(), float(second))
    ready, why = health.ready(40.0)
    assert not ready
    assert why == "Pub/Sub pulls failing for 39 s: 503 failed to connect to all addresses"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"ingest: every pull from {SUBSCRIPTION} has failed for {FAILING_AFTER:.0f} s (16 attempts; last: "
        "503 failed to connect to all addresses): nothing is being ingested. Check that this host reaches "
        "Pub/Sub (pubsub.googleapis.com:443, or PUBSUB_EMULATOR_HOST when set) and that the subscription "
        "exists"
    ]
    health.ok(41.0)
    assert health.ready(41.0) == (True, "pulling")
    assert caplog.records[-1].levelname == "WARNING"  # the all-clear after a warning is as loud
    assert caplog.records[-1].getMessage() == "ingest: Pub/Sub answers again after 39 failed pulls over 40 s"
    assert health.total_failures == 39


def test_a_long_outage_repeats_its_warning_every_five_minutes(caplog: pytest.LogCaptureFixture) -> None:
    health = PullHealth(SUBSCRIPTION)
    for second in range(0, 700):
        health.failed(unavailable(), float(second))
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [w.getMessage().split(" has failed for ")[1].split(" s ")[0] for w in warnings] == [
        "15",
        "315",
        "615",
    ]


def test_quiet_recovery_after_a_blip(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "bot.adapters.pubsub")
    health = PullHealth(SUBSCRIPTION)
    health.failed(unavailable(), 0.0)
    health.ok(2.0)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "ingest: Pull failed, retrying: 503 failed to connect to all addresses"),
        ("INFO", "ingest: Pub/Sub answers again after 1 failed pull over 2 s"),
    ]
