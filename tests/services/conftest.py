"""`/netlog` services in-process with a manual clock: the real store (SQLite and PostgreSQL), the real
kubernetes client against the fake API server, the real WebClient against the fake Slack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.adapters.slack import SlackGateway, make_client
from bot.adapters.store import Store
from bot.services import BackgroundTasks, build_netlog, configured_clusters
from tests.clock import ManualClock
from tests.fakes.kube import FakeKube
from tests.fakes.slack import FakeSlack
from tests.services.support import MEMBER, Bench, MakeBench, settings_for


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        fake.add_namespace("payments")
        fake.simulate_nodes(3)
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_usergroup("S0OPS", [MEMBER])
        yield fake


@pytest.fixture
def background() -> Iterator[BackgroundTasks]:
    tasks = BackgroundTasks()
    tasks.start()
    yield tasks
    tasks.stop(timeout=10)


@pytest.fixture
def make_bench(
    store: Store, slack: FakeSlack, kube: FakeKube, tmp_path: Path, background: BackgroundTasks
) -> MakeBench:
    def make(clusters: tuple[str, ...] = ("prod-eu",), rollout_wait: int = 2) -> Bench:
        settings = settings_for(kube.write_kubeconfig(tmp_path / "kubeconfig", list(clusters)), clusters)
        clock = ManualClock()
        gateway = SlackGateway(make_client(slack.token, slack.base_url))
        netlog = build_netlog(
            settings,
            store,
            gateway,
            configured_clusters(settings),
            clock,
            background,
            rollout_wait=rollout_wait,
        )
        return Bench(netlog, clock)

    return make


@pytest.fixture
def bench(make_bench: MakeBench) -> Bench:
    return make_bench()
