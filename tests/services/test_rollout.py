"""The rollout report after a NetworkLogging change: a watch on the nodes' events, in a background
task that answers on the click's `respond` once they arrive, or once the watch timed out."""

from __future__ import annotations

import threading
import time
from typing import Any

from bot.adapters.kube import NodeEvent
from bot.render.replies import Reply
from bot.services.netlogging import Rollout
from bot.services.rollout import NodeReports
from handlers import netlog
from tests.fakes.kube import FakeKube
from tests.services.support import OPERATOR, Answers, Bench, MakeBench, change_id, text_of


def rollout_version(kube: FakeKube) -> str:
    assert kube.networklogging is not None
    return str(kube.networklogging["metadata"]["resourceVersion"])


def enable_deny(bench: Bench) -> tuple[Answers, float]:
    """Applies `enable deny`; the answers so far, and when Apply returned."""
    answers = Answers()
    bench.netlog.apply(OPERATOR, change_id(bench.netlog.handle(OPERATOR, "enable deny")), answers)
    return answers, time.monotonic()


def report_of(answers: Answers) -> tuple[Reply, float]:
    report = answers.wait_for(2)[1]
    return report, time.monotonic()


def test_nodes_that_answer_late_are_reported_when_they_do(bench: Bench, kube: FakeKube) -> None:
    kube.simulate_nodes(3, delay=1.0)
    answers, applied = enable_deny(bench)
    assert len(answers.replies) == 1  # Apply returned before the nodes said anything
    assert "Waiting for the nodes to apply it" in text_of(answers.replies[0])
    report, reported = report_of(answers)
    assert f"3 node(s) of prod-eu applied resourceVersion {rollout_version(kube)}." in text_of(report)
    assert reported - applied >= 0.9
    watches = kube.requests_to("/api/v1/events", "GET")
    assert all(w.query["watch"] == "True" for w in watches)
    assert (
        watches[0].query["fieldSelector"] == "involvedObject.kind=NetworkLogging,involvedObject.name=default"
    )


def test_silent_nodes_are_reported_when_the_watch_times_out(make_bench: MakeBench, kube: FakeKube) -> None:
    kube.simulate_nodes(0)
    answers, applied = enable_deny(make_bench(rollout_wait=1))
    report, reported = report_of(answers)
    assert text_of(report) == (
        f"No node of prod-eu has reported resourceVersion {rollout_version(kube)} yet; "
        "`/netlog status` shows the setting."
    )
    assert 1.0 <= reported - applied < 5.0
    [watch] = kube.requests_to("/api/v1/events", "GET")
    assert watch.query["timeoutSeconds"] == "1"


def test_events_about_other_changes_are_not_counted(bench: Bench, kube: FakeKube) -> None:
    # resourceVersion 0 is never an object's: these events are about no change of this test.
    kube.add_event("UpdateNetworkLogging", "enabled network policy logging (resourceVersion = 0)")
    kube.add_event("InvalidNetworkLogging", "invalid (resourceVersion = 0): long ago", "Warning")
    report, _ = report_of(enable_deny(bench)[0])
    assert "3 node(s) of prod-eu applied" in text_of(report)


def test_an_invalid_networklogging_warning_is_reported(bench: Bench, kube: FakeKube) -> None:
    assert kube.networklogging is not None
    kube.networklogging["spec"]["cluster"]["allow"] = {"log": False, "delegate": True}  # set by hand
    report, _ = report_of(enable_deny(bench)[0])
    assert text_of(report) == (
        ":warning: The nodes report InvalidNetworkLogging on prod-eu: invalid network policy logging "
        f"configuration (resourceVersion = {rollout_version(kube)}): spec.cluster.allow.delegate is true "
        "while spec.cluster.allow.log is false"
    )


def test_a_watch_the_api_server_refuses_is_a_sentence(bench: Bench, kube: FakeKube) -> None:
    kube.fail_next(403, 1, path_contains="/events")
    report, _ = report_of(enable_deny(bench)[0])
    assert text_of(report).startswith(
        ":warning: Changed, but I could not read the nodes' events: The bot may not `watch` `events` (core) "
        "on prod-eu"
    )


def test_apply_returns_before_the_rollout_report_arrives(bench: Bench, kube: FakeKube) -> None:
    service = bench.netlog
    kube.simulate_nodes(3, delay=1.0)
    card = service.handle(OPERATOR, "enable deny")
    calls: list[str] = []
    answers: list[dict[str, Any]] = []
    reported = threading.Event()

    def respond(**kwargs: Any) -> None:
        answers.append(kwargs)
        if len(answers) == 2:
            reported.set()

    body = {"user": {"id": OPERATOR}, "actions": [{"value": change_id(card)}]}
    started = time.monotonic()
    netlog.apply(service, lambda *a, **k: calls.append("ack"), body, respond)  # type: ignore[arg-type]
    returned = time.monotonic() - started

    assert calls == ["ack"]
    assert returned < 1.0  # the listener thread is free before the nodes answered
    [done] = answers
    assert "now has `deny: log=true, delegate=false`" in done["text"]
    assert reported.wait(10)
    assert "3 node(s) of prod-eu applied" in answers[1]["text"]
    assert answers[1]["response_type"] == "ephemeral"


def test_an_event_for_a_longer_resource_version_is_not_about_this_change() -> None:
    reports = NodeReports(Rollout("prod-eu", "12"))
    applied = "enabled network policy logging (resourceVersion = {})"
    reports.add(NodeEvent("Normal", "UpdateNetworkLogging", applied.format(123), 1))
    reports.add(NodeEvent("Normal", "UpdateNetworkLogging", applied.format(1), 1))
    assert reports.applied == 0
    reports.add(NodeEvent("Normal", "UpdateNetworkLogging", applied.format(12), 1))
    assert reports.applied == 1
