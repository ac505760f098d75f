"""The fake Kubernetes API, driven by the real kubernetes client through a kubeconfig, answers like GKE."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, ReadTimeoutError

from tests.fakes.kube import FakeKube, write_kubeconfig

NL = ("networking.gke.io", "v1alpha1", "networkloggings")
DENY_DELEGATION = "policy.network.gke.io/enable-deny-logging"


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        yield fake


def api_client(kubeconfig: Path, context: str) -> Any:
    return config.new_client_from_config(config_file=str(kubeconfig), context=context)


@pytest.fixture
def api(fake: FakeKube, tmp_path: Path) -> Iterator[Any]:
    with api_client(fake.write_kubeconfig(tmp_path / "kubeconfig", ["prod"]), "prod") as api:
        yield api


@pytest.fixture
def custom(api: Any) -> Any:
    return client.CustomObjectsApi(api)


@pytest.fixture
def core(api: Any) -> Any:
    return client.CoreV1Api(api)


def status_of(call: Callable[[], object]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the parsed `Status` body of a refused call."""
    with pytest.raises(ApiException) as caught:
        call()
    body = json.loads(caught.value.body)
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["code"] == caught.value.status
    return caught.value.status, body


def test_the_object_starts_as_gke_creates_it(custom: Any) -> None:
    obj = custom.get_cluster_custom_object(*NL, "default")
    assert obj["apiVersion"] == "networking.gke.io/v1alpha1"
    assert obj["kind"] == "NetworkLogging"
    assert obj["metadata"]["name"] == "default"
    assert obj["metadata"]["resourceVersion"] == "1"
    assert obj["metadata"]["generation"] == 1
    assert obj["metadata"]["uid"]
    assert obj["metadata"]["creationTimestamp"].endswith("Z")
    off = {"log": False, "delegate": False}
    assert obj["spec"] == {"cluster": {"allow": off, "deny": off}}
    listed = custom.list_cluster_custom_object(*NL)
    assert listed["kind"] == "NetworkLoggingList"
    assert [item["metadata"]["name"] for item in listed["items"]] == ["default"]


def test_a_merge_patch_merges_bumps_versions_and_is_sent_as_merge_patch(fake: FakeKube, custom: Any) -> None:
    new = custom.patch_cluster_custom_object(*NL, "default", {"spec": {"cluster": {"deny": {"log": True}}}})
    assert new["spec"]["cluster"] == {
        "allow": {"log": False, "delegate": False},
        "deny": {"log": True, "delegate": False},
    }
    assert new["metadata"]["resourceVersion"] != "1"
    assert new["metadata"]["generation"] == 2
    assert custom.get_cluster_custom_object(*NL, "default") == new == fake.networklogging
    (patch,) = fake.requests_to("/networkloggings/default", "PATCH")
    assert patch.headers["content-type"] == "application/merge-patch+json"
    assert patch.body == {"spec": {"cluster": {"deny": {"log": True}}}}
    assert patch.status == 200

    removed = custom.patch_cluster_custom_object(*NL, "default", {"spec": {"cluster": {"allow": None}}})
    assert removed["spec"]["cluster"] == {"deny": {"log": True, "delegate": False}}
    assert int(removed["metadata"]["resourceVersion"]) > int(new["metadata"]["resourceVersion"])


def test_a_patch_that_changes_nothing_writes_nothing(fake: FakeKube, custom: Any) -> None:
    calls: list[dict[str, Any]] = []
    fake.on_patch_networklogging(calls.append)
    same = custom.patch_cluster_custom_object(*NL, "default", {"spec": {"cluster": {"deny": {"log": False}}}})
    assert same["metadata"]["resourceVersion"] == "1"
    assert calls == []
    changed = custom.patch_cluster_custom_object(*NL, "default", {"metadata": {"labels": {"team": "net"}}})
    assert changed["metadata"]["generation"] == 1  # metadata is not spec
    assert calls == [changed]


def test_a_stale_resource_version_in_the_patch_is_a_conflict(custom: Any) -> None:
    stale = {"metadata": {"resourceVersion": "1"}, "spec": {"cluster": {"deny": {"log": True}}}}
    current = custom.patch_cluster_custom_object(*NL, "default", stale)  # "1" is current: accepted
    status, body = status_of(lambda: custom.patch_cluster_custom_object(*NL, "default", stale))
    assert status == 409
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    assert body["details"] == {"name": "default", "group": "networking.gke.io", "kind": "networkloggings"}
    assert custom.get_cluster_custom_object(*NL, "default") == current


def test_the_api_server_checks_of_a_patch(custom: Any) -> None:
    status, body = status_of(
        lambda: custom.patch_cluster_custom_object(*NL, "default", {"metadata": {"name": "other"}})
    )
    assert (status, body["reason"]) == (400, "BadRequest")
    status, body = status_of(
        lambda: custom.patch_cluster_custom_object(
            *NL, "default", {"spec": {"cluster": {"deny": {"log": "yes"}}}}
        )
    )
    assert (status, body["reason"]) == (422, "Invalid")
    assert "spec.cluster.deny.log in body must be of type boolean" in body["message"]
    status, body = status_of(
        lambda: custom.patch_cluster_custom_object(
            *NL, "default", {"spec": {}}, _content_type="application/strategic-merge-patch+json"
        )
    )
    assert (status, body["reason"]) == (415, "UnsupportedMediaType")
    pruned = custom.patch_cluster_custom_object(*NL, "default", {"spec": {"cluster": {"allow": {"x": 1}}}})
    assert pruned["spec"]["cluster"]["allow"] == {"log": False, "delegate": False}


def test_absent_objects_are_404(fake: FakeKube, custom: Any) -> None:
    status, body = status_of(lambda: custom.get_cluster_custom_object(*NL, "other"))
    assert (status, body["reason"]) == (404, "NotFound")
    fake.networklogging = None
    status, body = status_of(lambda: custom.get_cluster_custom_object(*NL, "default"))
    assert status == 404
    assert body["message"] == 'networkloggings.networking.gke.io "default" not found'
    assert status_of(lambda: custom.patch_cluster_custom_object(*NL, "default", {"spec": {}}))[0] == 404
    assert custom.list_cluster_custom_object(*NL)["items"] == []
    fake.crd_installed = False
    status, body = status_of(lambda: custom.list_cluster_custom_object(*NL))
    assert body["message"] == "the server could not find the requested resource"


@pytest.mark.parametrize(
    ("code", "reason", "words"),
    [
        (403, "Forbidden", 'cannot patch resource "networkloggings" in API group "networking.gke.io"'),
        (404, "NotFound", 'networkloggings.networking.gke.io "default" not found'),
        (409, "Conflict", "the object has been modified"),
        (500, "InternalError", "Internal error occurred"),
        (503, "ServiceUnavailable", "unable to handle the request"),
    ],
)
def test_injected_faults_are_status_objects(
    fake: FakeKube, custom: Any, code: int, reason: str, words: str
) -> None:
    fake.fail_next(code, methods={"PATCH"}, path_contains="networkloggings")
    custom.get_cluster_custom_object(*NL, "default")  # not a PATCH: untouched
    status, body = status_of(lambda: custom.patch_cluster_custom_object(*NL, "default", {"spec": {}}))
    assert (status, body["reason"]) == (code, reason)
    assert words in body["message"]
    assert body["details"]["name"] == "default"
    custom.patch_cluster_custom_object(*NL, "default", {"spec": {}})  # one fault only


def test_faults_count_down(fake: FakeKube, core: Any) -> None:
    fake.fail_next(500, count=2)
    assert status_of(core.list_namespace)[0] == 500
    assert status_of(lambda: core.read_namespace("default"))[0] == 500
    assert core.read_namespace("default").metadata.name == "default"


def test_a_slow_patch_trips_the_client_timeout(fake: FakeKube, custom: Any) -> None:
    fake.slow_next(1.0)
    with pytest.raises(ReadTimeoutError):  # urllib3 does not retry a PATCH
        custom.patch_cluster_custom_object(*NL, "default", {"spec": {}}, _request_timeout=0.1)
    custom.patch_cluster_custom_object(*NL, "default", {"spec": {}}, _request_timeout=1)


def test_a_slow_get_is_retried_by_urllib3_before_it_fails(fake: FakeKube, custom: Any) -> None:
    fake.slow_next(1.0)
    custom.get_cluster_custom_object(*NL, "default", _request_timeout=0.1)  # the retry is fast
    assert len(fake.requests_to("/networkloggings/default", "GET")) == 2
    fake.slow_next(1.0, count=4)
    with pytest.raises(MaxRetryError):
        custom.get_cluster_custom_object(*NL, "default", _request_timeout=0.1)


def test_namespaces_are_annotated_and_unannotated_by_patch(fake: FakeKube, core: Any) -> None:
    fake.add_namespace("payments", labels={"team": "pay"})
    before = core.read_namespace("payments")
    on = core.patch_namespace("payments", {"metadata": {"annotations": {DENY_DELEGATION: "true"}}})
    assert on.metadata.annotations == {DENY_DELEGATION: "true"}
    assert on.metadata.labels == {"team": "pay", "kubernetes.io/metadata.name": "payments"}
    assert on.metadata.resource_version != before.metadata.resource_version
    assert fake.namespaces["payments"]["metadata"]["annotations"] == {DENY_DELEGATION: "true"}
    assert fake.requests[-1].headers["content-type"] == "application/strategic-merge-patch+json"

    off = core.patch_namespace("payments", {"metadata": {"annotations": {DENY_DELEGATION: None}}})
    assert off.metadata.annotations is None
    assert "annotations" not in fake.namespaces["payments"]["metadata"]

    core.patch_namespace(
        "payments",
        {"metadata": {"annotations": {DENY_DELEGATION: "true"}}},
        _content_type="application/merge-patch+json",
    )
    removal = [{"op": "remove", "path": "/metadata/annotations/policy.network.gke.io~1enable-deny-logging"}]
    assert core.patch_namespace("payments", removal).metadata.annotations is None
    assert fake.requests[-1].headers["content-type"] == "application/json-patch+json"

    names = [n.metadata.name for n in core.list_namespace(label_selector="team=pay").items]
    assert names == ["payments"]
    assert "kube-system" in [n.metadata.name for n in core.list_namespace().items]
    assert status_of(lambda: core.read_namespace("nope"))[1]["message"] == 'namespaces "nope" not found'
    assert status_of(lambda: core.patch_namespace("nope", {"metadata": {}}))[0] == 404


def test_events_are_listed_with_field_selectors(fake: FakeKube, core: Any) -> None:
    fake.add_event("UpdateNetworkLogging", "enabled network policy logging (resourceVersion = 1)")
    fake.add_event("Started", "other", involved_name="web-0", involved_kind="Pod")
    selector = "involvedObject.name=default,involvedObject.kind=NetworkLogging"
    (event,) = core.list_event_for_all_namespaces(field_selector=selector).items
    assert event.reason == "UpdateNetworkLogging"
    assert event.type == "Normal"
    assert event.count == 1
    assert event.source.component == "anetd"
    assert event.reporting_component == "anetd"
    assert event.metadata.namespace == "default"
    assert event.involved_object.api_version == "networking.gke.io/v1alpha1"
    assert fake.networklogging is not None
    assert event.involved_object.uid == fake.networklogging["metadata"]["uid"]
    assert event.last_timestamp is not None
    assert len(core.list_namespaced_event("default").items) == 2
    assert core.list_namespaced_event("kube-system").items == []
    assert len(core.list_event_for_all_namespaces(field_selector="reason!=Started").items) == 1
    status, body = status_of(lambda: core.list_event_for_all_namespaces(field_selector="spec.x=1"))
    assert (status, body["message"]) == (400, "field label not supported: spec.x")


def test_simulated_nodes_report_each_change(fake: FakeKube, custom: Any, core: Any) -> None:
    fake.simulate_nodes(2)
    new = custom.patch_cluster_custom_object(*NL, "default", {"spec": {"cluster": {"deny": {"log": True}}}})
    selector = "involvedObject.name=default,involvedObject.kind=NetworkLogging"
    events = core.list_namespaced_event("default", field_selector=selector).items
    version = new["metadata"]["resourceVersion"]
    assert [(e.type, e.reason, e.message) for e in events] == 2 * [
        ("Normal", "UpdateNetworkLogging", f"enabled network policy logging (resourceVersion = {version})")
    ]
    assert len({e.source.host for e in events}) == 2

    invalid = {"spec": {"cluster": {"deny": {"log": False}, "allow": {"delegate": True}}}}
    custom.patch_cluster_custom_object(*NL, "default", invalid)
    warnings = core.list_namespaced_event("default", field_selector="type=Warning").items
    assert [w.reason for w in warnings] == ["InvalidNetworkLogging"]
    assert "spec.cluster.allow.delegate is true while spec.cluster.allow.log is false" in warnings[0].message
    assert "disabled network policy logging" in fake.events[-2]["message"]


def test_two_contexts_in_one_kubeconfig(fake: FakeKube, tmp_path: Path) -> None:
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", ["prod", "staging"])
    _, current = config.list_kube_config_contexts(config_file=str(kubeconfig))
    assert current["name"] == "prod"
    for context in ("prod", "staging"):
        with api_client(kubeconfig, context) as api:
            assert (
                client.CustomObjectsApi(api).get_cluster_custom_object(*NL, "default")["kind"]
                == "NetworkLogging"
            )
    assert [r.headers["authorization"] for r in fake.requests] == 2 * ["Bearer fake-token"]


def test_one_kubeconfig_for_two_fake_clusters(tmp_path: Path) -> None:
    with FakeKube(token="a") as prod, FakeKube(token="b") as staging:
        staging.networklogging = None
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"prod": prod, "staging": staging})
        with api_client(kubeconfig, "prod") as api:
            assert client.CustomObjectsApi(api).get_cluster_custom_object(*NL, "default")
        with api_client(kubeconfig, "staging") as api:
            assert (
                status_of(lambda: client.CustomObjectsApi(api).get_cluster_custom_object(*NL, "default"))[0]
                == 404
            )


def test_a_wrong_token_is_401(fake: FakeKube, tmp_path: Path) -> None:
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", ["prod"])
    kubeconfig.write_text(kubeconfig.read_text().replace("token: fake-token", "token: stolen"))
    with api_client(kubeconfig, "prod") as api:
        status, body = status_of(client.CoreV1Api(api).list_namespace)
    assert (status, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")


def test_unknown_paths_are_404(custom: Any) -> None:
    status, body = status_of(lambda: custom.get_cluster_custom_object("example.com", "v1", "widgets", "x"))
    assert (status, body["message"]) == (404, "the server could not find the requested resource")


def test_concurrent_patches_with_the_same_resource_version_let_one_win(fake: FakeKube, custom: Any) -> None:
    def patch(side: str) -> int:
        body = {"metadata": {"resourceVersion": "1"}, "spec": {"cluster": {side: {"log": True}}}}
        try:
            custom.patch_cluster_custom_object(*NL, "default", body)
        except ApiException as error:
            return int(error.status)
        return 200

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(patch, 4 * ["allow", "deny"]))
    assert statuses == [200] + 7 * [409]


def test_nodes_can_answer_late(fake: FakeKube, custom: Any) -> None:
    fake.simulate_nodes(3, delay=0.05)
    custom.patch_cluster_custom_object(*NL, "default", {"spec": {"cluster": {"allow": {"log": True}}}})
    assert fake.events == []
    deadline = time.monotonic() + 2
    while len(fake.events) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [e["reason"] for e in fake.events] == 3 * ["UpdateNetworkLogging"]


SELECTOR = "involvedObject.name=default,involvedObject.kind=NetworkLogging"


def test_a_watch_streams_recorded_events_then_new_ones_until_its_timeout(fake: FakeKube, core: Any) -> None:
    fake.add_event("UpdateNetworkLogging", "enabled network policy logging (resourceVersion = 1)")
    fake.add_event("Started", "other", involved_name="web-0", involved_kind="Pod")
    threading.Timer(0.3, lambda: fake.add_event("UpdateNetworkLogging", "late", host="node-1")).start()
    started = time.monotonic()
    changes = list(
        watch.Watch().stream(core.list_event_for_all_namespaces, field_selector=SELECTOR, timeout_seconds=1)
    )
    elapsed = time.monotonic() - started
    assert [(c["type"], c["object"].reason, c["object"].message) for c in changes] == [
        ("ADDED", "UpdateNetworkLogging", "enabled network policy logging (resourceVersion = 1)"),
        ("ADDED", "UpdateNetworkLogging", "late"),
    ]
    assert changes[1]["object"].source.host == "node-1"
    assert 1.0 <= elapsed < 2.0  # the server ended the stream at timeoutSeconds
    [request] = fake.requests_to("/events")
    assert request.query["watch"] == "True"  # as the Python client spells it
    assert (request.query["timeoutSeconds"], request.status) == ("1", 200)


def test_a_watch_from_a_resource_version_sends_only_later_events(fake: FakeKube, core: Any) -> None:
    first = fake.add_event("UpdateNetworkLogging", "first")
    fake.add_event("UpdateNetworkLogging", "second")
    changes = watch.Watch().stream(
        core.list_event_for_all_namespaces,
        field_selector=SELECTOR,
        resource_version=first["metadata"]["resourceVersion"],
        timeout_seconds=1,
    )
    assert [c["object"].message for c in changes] == ["second"]
    namespaced = watch.Watch().stream(core.list_namespaced_event, "kube-system", timeout_seconds=1)
    assert list(namespaced) == []


def test_a_watch_is_chunked_json_lines_and_refuses_bad_selectors(fake: FakeKube, core: Any) -> None:
    fake.add_event("UpdateNetworkLogging", "one")
    response = core.list_event_for_all_namespaces(watch=True, timeout_seconds=1, _preload_content=False)
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.headers["Content-Type"] == "application/json"
    [line] = response.read().splitlines()
    change = json.loads(line)
    assert (change["type"], change["object"]["kind"], change["object"]["message"]) == (
        "ADDED",
        "Event",
        "one",
    )
    status, body = status_of(
        lambda: core.list_event_for_all_namespaces(watch=True, field_selector="spec.x=1", timeout_seconds=1)
    )
    assert (status, body["message"]) == (400, "field label not supported: spec.x")
    fake.fail_next(403)
    assert status_of(lambda: core.list_event_for_all_namespaces(watch=True, timeout_seconds=1))[0] == 403


def test_stopping_the_server_ends_its_watches(core: Any, fake: FakeKube) -> None:
    results: list[int] = []
    watcher = threading.Thread(
        target=lambda: results.append(
            len(list(watch.Watch().stream(core.list_event_for_all_namespaces, timeout_seconds=30)))
        )
    )
    watcher.start()
    time.sleep(0.3)
    fake.stop()
    watcher.join(5)
    assert results == [0]
    fake.start()


def review(api: Any, verb: str, resource: str, group: str = "", name: str | None = None) -> Any:
    attributes = client.V1ResourceAttributes(verb=verb, group=group, resource=resource, name=name)
    body = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
    )
    return client.AuthorizationV1Api(api).create_self_subject_access_review(body)


def test_self_subject_access_reviews_answer_from_the_grants(fake: FakeKube, api: Any) -> None:
    allowed = review(api, "patch", "networkloggings", "networking.gke.io", "default")
    assert allowed.status.allowed is True
    assert allowed.status.reason.startswith("RBAC: allowed by ClusterRoleBinding")
    assert allowed.spec.resource_attributes.name == "default"  # the review comes back with its answer
    fake.grant_only(("get", "networking.gke.io", "networkloggings"), ("watch", "", "events"))
    assert review(api, "get", "networkloggings", "networking.gke.io", "default").status.allowed is True
    assert review(api, "watch", "events").status.allowed is True
    denied = review(api, "patch", "networkloggings", "networking.gke.io", "default")
    assert (denied.status.allowed, denied.status.reason) == (False, None)
    assert review(api, "patch", "namespaces").status.allowed is False
    [last] = fake.requests_to("selfsubjectaccessreviews")[-1:]
    assert (last.method, last.status) == ("POST", 201)


def test_a_review_without_attributes_is_invalid(fake: FakeKube, api: Any) -> None:
    reviews = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": {}}
    with pytest.raises(ApiException) as caught:
        api.call_api(reviews, "POST", body=body, auth_settings=["BearerToken"], _preload_content=False)
    assert caught.value.status == 422
    assert (
        "exactly one of nonResourceAttributes or resourceAttributes"
        in json.loads(caught.value.body)["message"]
    )
