"""`netlog-bot explain` in a terminal: the same answer as `/netlog explain` and `propose`, from the
fake Kubernetes API server through a kubeconfig; a flow or cluster it cannot read is exit 2."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.environment import HOST_SETTINGS, scrubbed
from tests.fakes.kube import FakeKube
from tests.policy_cluster import DENIED_FLOW, payments_cluster


@pytest.fixture
def environ(tmp_path: Path) -> Iterator[dict[str, str]]:
    with FakeKube() as kube:
        payments_cluster(kube)
        config = tmp_path / "netlog.yaml"
        config.write_text(
            "clusters: {prod-eu: {context: prod-eu}, staging: {context: staging}}\n", encoding="utf-8"
        )
        yield scrubbed(drop=HOST_SETTINGS) | {
            "NETLOG_CONFIG": str(config),
            "KUBECONFIG": str(kube.write_kubeconfig(tmp_path / "kubeconfig", ["prod-eu", "staging"])),
            "NETLOG_DB_URL": f"sqlite:///{tmp_path / 'netlog.db'}",
        }


def explain(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "explain", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_explain_prints_the_reason_and_a_proposal(environ: dict[str, str], tmp_path: Path) -> None:
    result = explain(environ, "--cluster", "prod-eu", DENIED_FLOW)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"Why was {DENIED_FLOW} denied? (prod-eu)\n")
    assert "• ingress to payments/api is isolated by `default-deny` and `api-from-gateway`" in out
    manifest = yaml.safe_load(
        out.split("nothing else denied now):\n", 1)[1].split("\nApply it yourself", 1)[0]
    )
    assert manifest["metadata"]["name"] == "netlog-allow-checkout-web-to-payments-api-8080-tcp"
    assert "Apply it yourself: kubectl apply -f - in prod-eu's context" in out
    assert not (tmp_path / "netlog.db").exists()  # explain needs no store


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((DENIED_FLOW,), "Which cluster? Add --cluster NAME; configured: prod-eu, staging."),
        (("--cluster", "prod-eu", "web", "to", "api"), "I could not read a flow in web to api"),
        (("--cluster", "nowhere", DENIED_FLOW), "I don't manage a cluster nowhere"),
    ],
)
def test_what_cannot_be_read_is_exit_2(environ: dict[str, str], args: tuple[str, ...], expected: str) -> None:
    result = explain(environ, *args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
