"""The cluster registry the composition root builds: names from the config, one client per cluster
built on first use, and a cluster that cannot be reached refused with a sentence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.adapters.kube import ClusterAccess, Clusters, KubeError
from tests.fakes.kube import FakeKube


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        yield fake


def test_clients_are_built_once_on_first_use(kube: FakeKube, tmp_path: Path) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", ["prod-us", "prod-eu"])
    access = {"prod-us": ClusterAccess("prod-us"), "prod-eu": ClusterAccess("prod-eu")}
    clusters = Clusters(access, in_cluster=False, kubeconfig=str(kubeconfig))
    assert clusters.names() == ["prod-eu", "prod-us"]
    assert kube.requests == []  # nothing is reached before a command needs it

    client = clusters.client("prod-eu")
    assert client is clusters.client("prod-eu")
    assert client.name == "prod-eu"
    assert client.get_logging()["kind"] == "NetworkLogging"
    assert clusters.client("prod-us") is not client


def test_a_cluster_that_cannot_be_reached_is_a_sentence(kube: FakeKube, tmp_path: Path) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", ["prod-eu"])
    clusters = Clusters({"staging": ClusterAccess("staging")}, in_cluster=False, kubeconfig=str(kubeconfig))
    with pytest.raises(KubeError) as caught:
        clusters.client("staging")
    assert str(caught.value).startswith("I cannot reach staging: ")
    assert "staging" in str(caught.value).removeprefix("I cannot reach staging: ")
    assert "`gcloud container clusters get-credentials NAME` writes one" in str(caught.value)


def test_the_kubeconfig_context_is_used_when_no_context_is_named(kube: FakeKube, tmp_path: Path) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", ["prod-eu"])
    clusters = Clusters({"here": ClusterAccess()}, in_cluster=False, kubeconfig=str(kubeconfig))
    assert clusters.client("here").annotated_namespaces() == []
