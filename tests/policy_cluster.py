"""The cluster every explain/propose test talks to, on the fake Kubernetes API server: `checkout/web`
calls `payments/api` on 8080, which `default-deny` and `api-from-gateway` do not allow; `edge/gateway`
may. Pods carry the labels a ReplicaSet gives them (with `pod-template-hash`) and `api` names its
port `http`."""

from __future__ import annotations

from typing import Any

from tests.fakes.kube import FakeKube

DENIED_FLOW = "checkout/web → payments/api:8080/tcp"
EXPLANATION = (
    "ingress to payments/api is isolated by `default-deny` and `api-from-gateway`; neither allows "
    "app=web from namespace checkout"
)

DEFAULT_DENY: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny", "namespace": "payments"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
}
API_FROM_GATEWAY: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "api-from-gateway", "namespace": "payments"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "api"}},
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge"}},
                        "podSelector": {"matchLabels": {"app": "gateway"}},
                    }
                ],
                "ports": [{"port": "http"}],
            }
        ],
    },
}


def payments_cluster(kube: FakeKube) -> FakeKube:
    for name in ("checkout", "payments", "edge"):
        if name not in kube.namespaces:
            kube.add_namespace(name)
    kube.add_pod(
        "checkout",
        "web-6d9f8b7c5d-x7k2p",
        {"app": "web", "pod-template-hash": "6d9f8b7c5d"},
        owner=("ReplicaSet", "web-6d9f8b7c5d"),
    )
    kube.add_pod(
        "payments",
        "api-7b78d7c957-zkn54",
        {"app": "api", "tier": "backend", "pod-template-hash": "7b78d7c957"},
        {"http": (8080, "TCP")},
        owner=("ReplicaSet", "api-7b78d7c957"),
    )
    kube.add_pod(
        "payments",
        "worker-5d8f9c7b6d-abcde",
        {"app": "worker", "tier": "backend", "pod-template-hash": "5d8f9c7b6d"},
        owner=("ReplicaSet", "worker-5d8f9c7b6d"),
    )
    kube.add_pod("edge", "gateway-0", {"app": "gateway"}, owner=("StatefulSet", "gateway"))
    kube.add_network_policy(DEFAULT_DENY)
    kube.add_network_policy(API_FROM_GATEWAY)
    return kube
