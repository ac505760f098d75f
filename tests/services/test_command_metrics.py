"""`/netlog` commands and clicks counted by name and outcome, as /metrics shows them: what was asked,
what was refused, what failed in Kubernetes, what was applied."""

from __future__ import annotations

from bot.adapters.metrics import Metrics
from tests.fakes.kube import FakeKube
from tests.services.support import OPERATOR, STRANGER, Bench, change_id


def counts(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["command"], sample.labels["outcome"]): sample.value
        for family in metrics.registry.collect()
        if family.name == "netlog_commands"
        for sample in family.samples
        if sample.name == "netlog_commands_total"
    }


def test_commands_and_clicks_are_counted_by_name_and_outcome(bench: Bench, kube: FakeKube) -> None:
    bench.netlog.metrics = metrics = Metrics()
    bench.netlog.handle(STRANGER, "enable please")
    bench.netlog.handle(STRANGER, "help")
    bench.netlog.handle(STRANGER, "enable deny")
    card = bench.netlog.handle(OPERATOR, "enable deny")
    bench.apply_all(OPERATOR, change_id(card), 2)
    bench.apply(OPERATOR, change_id(card))
    bench.netlog.cancel(OPERATOR, change_id(bench.netlog.handle(OPERATOR, "disable deny")))
    kube.fail_next(403, methods={"GET"})
    bench.netlog.handle(OPERATOR, "enable allow")  # the card cannot read the current setting
    assert counts(metrics) == {
        ("(invalid)", "syntax_error"): 1,
        ("help", "answered"): 1,
        ("enable", "refused"): 1,
        ("enable", "confirm"): 1,
        ("enable", "applied"): 1,
        ("apply", "already applied"): 1,
        ("disable", "confirm"): 1,
        ("cancel", "cancelled"): 1,
        ("enable", "failed"): 1,
    }
