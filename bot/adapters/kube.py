"""Kubernetes adapter: the cluster's `NetworkLogging` object, namespace annotations and the nodes'
events about them. Errors become sentences a person can act on (which RBAC rule is missing, whether
the cluster runs Dataplane V2, whether the API server answered).

Connection per cluster, from `clusters:` in the config: `endpoint` (+ `ca_certificate`) is GKE mode,
with a bearer token from Google application default credentials, refreshed as it expires; `context`
picks a kubeconfig context; with neither, the bot's own cluster when running in a pod, else the
kubeconfig's current context. `Clusters` holds them by name and builds each client on first use.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from bot.core.netlogging import DENY_ANNOTATION, GROUP, NAME, PLURAL, VERSION

log = logging.getLogger(__name__)

TIMEOUT = 10.0
CLUSTER_ROLE_HINT = (
    "apply the ClusterRole `netlog-bot` from deploy/kubernetes/rbac.yaml (README: 'RBAC for the bot') "
    "and bind it to the bot's identity"
)


#: What to do when the kubeconfig has no usable context for a cluster.
KUBECONFIG_HINT = (
    "Give the bot a kubeconfig with the cluster's context (KUBECONFIG, else ~/.kube/config; `gcloud "
    "container clusters get-credentials NAME` writes one), or `endpoint` and `ca_certificate` for GKE mode."
)


APPLY_ROLE_HINT = (
    "applying proposals is opt-in: apply deploy/kubernetes/rbac-apply.yaml (README: 'RBAC for the "
    "bot') to let the bot create and delete the NetworkPolicies it proposes"
)
GROUPS = {
    "networkloggings": "networking.gke.io",
    "networkpolicies": "networking.k8s.io",
    "deployments": "apps",
    "statefulsets": "apps",
    "daemonsets": "apps",
    "replicasets": "apps",
    "jobs": "batch",
}


class KubeError(Exception):
    """A failed Kubernetes call, already phrased for a person."""


class _NoToken(KubeError):
    """Google gave no access token for GKE mode; the caller knows which cluster it was for."""


@dataclass(frozen=True, slots=True)
class NodeEvent:
    type: str
    reason: str
    message: str
    count: int
    resource_version: str = ""  # the Event's own, where a later watch can resume


@dataclass(frozen=True, slots=True)
class Access:
    """One thing the bot does in a cluster, as RBAC names it."""

    verb: str
    resource: str
    group: str = ""  # the core API group
    name: str | None = None

    @property
    def target(self) -> str:
        """What the verb applies to, as `check` names it: "networkloggings `default`", "namespaces"."""
        return self.resource + (f" `{self.name}`" if self.name else "")


#: Everything the bot does in a cluster (the calls below), and so what the netlog-bot ClusterRole
#: grants: `netlog-bot check` asks the API server about each (a test compares them with the role).
ACCESS_NEEDED = (
    Access("get", PLURAL, GROUP, NAME),
    Access("patch", PLURAL, GROUP, NAME),
    Access("get", "namespaces"),
    Access("list", "namespaces"),
    Access("patch", "namespaces"),
    Access("watch", "events"),
    # /netlog explain and propose
    Access("list", "networkpolicies", "networking.k8s.io"),
    Access("list", "pods"),
    *(
        Access("get", plural, "apps")
        for plural in ("deployments", "statefulsets", "daemonsets", "replicasets")
    ),
    Access("get", "jobs", "batch"),
)
#: Applying proposals and withdrawing them: the opt-in netlog-bot-apply ClusterRole.
APPLY_ACCESS = (
    Access("create", "networkpolicies", "networking.k8s.io"),
    Access("delete", "networkpolicies", "networking.k8s.io"),
)


@dataclass(frozen=True, slots=True)
class ClusterAccess:
    context: str | None = None
    endpoint: str | None = None
    ca_certificate: str | None = None


def api_client(access: ClusterAccess, *, in_cluster: bool, kubeconfig: str | None) -> Any:
    configuration = k8s.Configuration()
    if access.endpoint:
        _gke_configuration(access, configuration)
    elif access.context is None and in_cluster:
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        k8s_config.load_kube_config(
            config_file=kubeconfig, context=access.context, client_configuration=configuration
        )
    # One retry for a dropped connection, none for slow answers or 5xx: a person is waiting for
    # the answer in Slack, and "did not answer" in seconds beats three silent timeouts.
    configuration.retries = urllib3.Retry(total=1, connect=1, read=0, status=0, other=0)
    return k8s.ApiClient(configuration)


def _gke_configuration(access: ClusterAccess, configuration: Any) -> None:
    """GKE from outside the cluster (App Engine, Cloud Run): Google credentials as bearer token."""
    import google.auth
    import google.auth.exceptions
    import google.auth.transport.requests

    def no_token(error: google.auth.exceptions.GoogleAuthError) -> _NoToken:
        # RefreshError's first argument can be a whole response body (a proxy's HTML page, say):
        # one line, capped, is enough to tell invalid_grant from a network problem.
        detail = " ".join(str(error.args[0] if error.args else type(error).__name__).split())
        if len(detail) > 200:
            detail = detail[:199] + "…"
        return _NoToken(
            f"Google did not give the bot an access token ({detail}): check the bot's Google "
            "credentials (GOOGLE_APPLICATION_CREDENTIALS, or the service account it runs as)."
        )

    try:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except google.auth.exceptions.GoogleAuthError as error:
        raise no_token(error) from None
    request = google.auth.transport.requests.Request()
    configuration.host = access.endpoint if "://" in (access.endpoint or "") else f"https://{access.endpoint}"
    if access.ca_certificate:
        configuration.ssl_ca_cert = _ca_file(access.ca_certificate)

    def token(_: Any = None) -> dict[str, str]:
        if not credentials.valid:
            try:
                credentials.refresh(request)  # type: ignore[no-untyped-call]
            except google.auth.exceptions.GoogleAuthError as error:
                raise no_token(error) from None
        return {"authorization": f"Bearer {credentials.token}"}

    configuration.refresh_api_key_hook = lambda config: config.api_key.update(token())
    configuration.api_key = token()


def _ca_file(ca_certificate: str) -> str:
    """The kubernetes client reads the CA from a file: PEM as given, or decoded from GKE's base64."""
    pem = (
        ca_certificate if "BEGIN CERTIFICATE" in ca_certificate else base64.b64decode(ca_certificate).decode()
    )
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(pem)
    return handle.name


#: Workload kinds whose pod template gives a workload's labels when no pod of it runs.
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=netlog-bot"


class ClusterClient:
    def __init__(self, name: str, client: Any) -> None:
        self.name = name
        self.custom = k8s.CustomObjectsApi(client)
        self.core = k8s.CoreV1Api(client)
        self.apps = k8s.AppsV1Api(client)
        self.batch = k8s.BatchV1Api(client)
        self.networking = k8s.NetworkingV1Api(client)

    def get_logging(self) -> dict[str, Any]:
        obj: dict[str, Any] = self._call(
            "get",
            "networkloggings",
            lambda: self.custom.get_cluster_custom_object(
                GROUP, VERSION, PLURAL, NAME, _request_timeout=TIMEOUT
            ),
        )
        return obj

    def patch_logging(self, build_patch: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Read, build the merge patch from what was read (with its resourceVersion, so a concurrent
        change is a 409, not a silent overwrite), patch; on 409 once more from a fresh read."""
        for attempt in (1, 2):
            current = self.get_logging()
            body = build_patch(current)
            body.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                patched: dict[str, Any] = self._call(
                    "patch", "networkloggings", self._patcher(body), retry_conflict=attempt == 1
                )
                return patched
            except _Conflict:
                log.info("kube: %s changed under us; retrying with a fresh read", self.name)
        raise KubeError(f"Someone else changed NetworkLogging on {self.name} at the same time; try again.")

    def _patcher(self, body: dict[str, Any]) -> Callable[[], Any]:
        return lambda: self.custom.patch_cluster_custom_object(
            GROUP, VERSION, PLURAL, NAME, body, _request_timeout=TIMEOUT
        )

    def annotated_namespaces(self) -> list[str]:
        listed = self._call("list", "namespaces", lambda: self.core.list_namespace(_request_timeout=TIMEOUT))
        return sorted(
            ns.metadata.name
            for ns in listed.items
            if (ns.metadata.annotations or {}).get(DENY_ANNOTATION) == "true"
        )

    def namespace_annotated(self, namespace: str) -> bool:
        found = self._call(
            "get",
            "namespaces",
            lambda: self.core.read_namespace(namespace, _request_timeout=TIMEOUT),
            namespace,
        )
        return (found.metadata.annotations or {}).get(DENY_ANNOTATION) == "true"

    def set_namespace_logging(self, namespace: str, on: bool) -> None:
        body = {"metadata": {"annotations": {DENY_ANNOTATION: "true" if on else None}}}
        self._call(
            "patch",
            "namespaces",
            lambda: self.core.patch_namespace(namespace, body, _request_timeout=TIMEOUT),
            namespace,
        )

    def watch_logging_events(self, timeout: int, since: str | None = None) -> Iterator[NodeEvent]:
        """The NetworkLogging object's events as they are recorded: those already there first (or
        only those after the Event resourceVersion `since`), until the API server ends the watch
        after `timeout` seconds. Failures, also halfway through, are a `KubeError`."""
        selector = f"involvedObject.kind=NetworkLogging,involvedObject.name={NAME}"
        options: dict[str, Any] = {"field_selector": selector, "timeout_seconds": timeout}
        if since:
            options["resource_version"] = since
        # The read timeout spans the whole watch: events may rightly not come for `timeout` seconds.
        stream = k8s_watch.Watch().stream(
            self.core.list_event_for_all_namespaces, **options, _request_timeout=(TIMEOUT, timeout + TIMEOUT)
        )
        try:
            while (change := self._call("watch", "events", lambda: next(stream, None))) is not None:
                event = change["object"]
                yield NodeEvent(
                    event.type or "",
                    event.reason or "",
                    event.message or "",
                    event.count or 1,
                    event.metadata.resource_version or "",
                )
        finally:
            stream.close()  # a caller that has seen enough hangs up now, not when collected

    # --- what explain and propose read, and what Apply and withdraw change -----------------------
    # Plain JSON (camelCase, as `kubectl get -o json` shows it), not the client's models: the
    # evaluator reads manifests, and a proposal is shown and created as one.

    def network_policies(self, namespace: str) -> list[dict[str, Any]]:
        listed = self._call(
            "list",
            "networkpolicies",
            lambda: _json(self.networking.list_namespaced_network_policy(namespace, **_RAW)),
        )
        return list(listed.get("items") or [])

    def managed_policies(self) -> list[dict[str, Any]]:
        """The NetworkPolicies the bot created (labelled managed-by netlog-bot), in every namespace."""
        listed = self._call(
            "list",
            "networkpolicies",
            lambda: _json(
                self.networking.list_network_policy_for_all_namespaces(
                    label_selector=MANAGED_SELECTOR, **_RAW
                )
            ),
        )
        return list(listed.get("items") or [])

    def create_network_policy(self, manifest: dict[str, Any]) -> dict[str, Any]:
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        created: dict[str, Any] = self._call(
            "create",
            "networkpolicies",
            lambda: _json(self.networking.create_namespaced_network_policy(namespace, manifest, **_RAW)),
            name,
        )
        return created

    def delete_network_policy(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Deletes it; with `uid`, only that very object (a 409 if it was replaced meanwhile)."""
        options = k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid=uid)) if uid else None
        self._call(
            "delete",
            "networkpolicies",
            lambda: self.networking.delete_namespaced_network_policy(name, namespace, body=options, **_RAW),
            name,
        )

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        listed = self._call("list", "pods", lambda: _json(self.core.list_namespaced_pod(namespace, **_RAW)))
        return list(listed.get("items") or [])

    def namespace_labels(self) -> dict[str, dict[str, str]]:
        listed = self._call("list", "namespaces", lambda: self.core.list_namespace(_request_timeout=TIMEOUT))
        return {ns.metadata.name: dict(ns.metadata.labels or {}) for ns in listed.items}

    def workload(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A workload by kind and name, or None when there is none."""
        read = {
            "Deployment": self.apps.read_namespaced_deployment,
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "DaemonSet": self.apps.read_namespaced_daemon_set,
            "ReplicaSet": self.apps.read_namespaced_replica_set,
            "Job": self.batch.read_namespaced_job,
        }[kind]
        resource = "jobs" if kind == "Job" else f"{kind.lower()}s"
        try:
            found: dict[str, Any] = self._call(
                "get", resource, lambda: _json(read(name, namespace, **_RAW)), name
            )
        except _Missing:
            return None
        return found

    def _call(
        self,
        verb: str,
        resource: str,
        call: Callable[[], Any],
        name: str | None = None,
        *,
        retry_conflict: bool = False,
    ) -> Any:
        try:
            return call()
        except ApiException as error:
            if error.status == 409 and retry_conflict:
                raise _Conflict from None
            if error.status == 404 and verb == "get" and resource in _MAY_BE_MISSING:
                raise _Missing from None
            raise KubeError(describe(error, self.name, verb, resource, name)) from None
        except _NoToken as error:  # from the refresh hook, before anything was sent
            raise KubeError(f"I cannot reach {self.name}: {error}") from None
        except Exception as error:  # urllib3 timeouts, refused connections, DNS, TLS
            if why := _rejected_certificate(error):
                raise KubeError(
                    f"The API server of {self.name} presented a certificate that its configured CA "
                    f"certificate does not vouch for ({why}): the CA certificate does not match the "
                    "endpoint. Copy both again (`gcloud container clusters describe "
                    f"{self.name} --format='value(endpoint,masterAuth.clusterCaCertificate)'`, or "
                    "`gcloud container clusters get-credentials` for a kubeconfig)."
                ) from None
            raise KubeError(
                f"The API server of {self.name} did not answer ({type(error).__name__}); "
                "try again in a minute."
            ) from None


class _Conflict(Exception):
    pass


def may(client: ClusterClient, access: Access) -> bool:
    """Whether the API server lets the bot do `access` in `client`'s cluster, asked with a
    SelfSubjectAccessReview: nothing is read or changed. Not a `ClusterClient` method, which are the
    bot's own calls: every identity may ask this about itself (system:basic-user), so the
    ClusterRole need not grant it."""
    attributes = k8s.V1ResourceAttributes(
        verb=access.verb, group=access.group, resource=access.resource, name=access.name
    )
    review = k8s.V1SelfSubjectAccessReview(
        spec=k8s.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
    )
    reviews = k8s.AuthorizationV1Api(client.core.api_client)
    answer = client._call(
        "create",
        "selfsubjectaccessreviews",
        lambda: reviews.create_self_subject_access_review(review, _request_timeout=TIMEOUT),
    )
    return bool(answer.status and answer.status.allowed)


class _Missing(Exception):
    """A workload looked up by name is not there: the caller tries the next kind."""


_MAY_BE_MISSING = {"deployments", "statefulsets", "daemonsets", "replicasets", "jobs"}
#: Read the answer as JSON ourselves: manifests stay as the API server wrote them.
_RAW = {"_preload_content": False, "_request_timeout": TIMEOUT}


def _json(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data)
    return data


class Clusters:
    """The configured clusters by name. Each client is built on first use, so a cluster that cannot be
    reached (no kubeconfig context, no Google token) refuses only the commands that need it."""

    def __init__(
        self, access: Mapping[str, ClusterAccess], *, in_cluster: bool, kubeconfig: str | None
    ) -> None:
        self._access = dict(access)
        self._in_cluster = in_cluster
        self._kubeconfig = kubeconfig
        self._clients: dict[str, ClusterClient] = {}
        self._lock = threading.Lock()  # listeners and rollout reports ask from their own threads

    def names(self) -> list[str]:
        return sorted(self._access)

    def client(self, name: str) -> ClusterClient:
        with self._lock:
            if name not in self._clients:
                try:
                    raw = api_client(
                        self._access[name], in_cluster=self._in_cluster, kubeconfig=self._kubeconfig
                    )
                except k8s_config.ConfigException as error:  # no kubeconfig, or not that context
                    raise KubeError(f"I cannot reach {name}: {error} {KUBECONFIG_HINT}") from None
                except Exception as error:
                    raise KubeError(f"I cannot reach {name}: {error}") from None
                self._clients[name] = ClusterClient(name, raw)
            return self._clients[name]


def _rejected_certificate(error: Exception) -> str | None:
    """Why the client refused the API server's certificate, if that is what failed: retrying
    will not help then, unlike the other connection failures."""
    reason = getattr(error, "reason", error)  # urllib3's MaxRetryError keeps the last failure there
    cause = reason.args[0] if isinstance(reason, urllib3.exceptions.SSLError) and reason.args else None
    if isinstance(cause, ssl.SSLCertVerificationError):
        return str(cause.verify_message or cause)
    return None


def describe(error: ApiException, cluster: str, verb: str, resource: str, name: str | None = None) -> str:
    status = error.status or 0
    if status == 403:
        group = GROUPS.get(resource, "core")
        hint = (
            APPLY_ROLE_HINT
            if verb in ("create", "delete") and resource == "networkpolicies"
            else CLUSTER_ROLE_HINT
        )
        return f"The bot may not `{verb}` `{resource}` ({group}) on {cluster}: {hint}. ({_message(error)})"
    if status == 401:
        return (
            f"The API server of {cluster} rejected the bot's credentials: check its kubeconfig or identity."
        )
    if status == 404 and resource == "networkloggings":
        return (
            f"{cluster} has no NetworkLogging object: is it a Dataplane V2 cluster? "
            "(`gcloud container clusters describe` shows `networkConfig.datapathProvider: ADVANCED_DATAPATH`)"
        )
    if status == 404:
        return f"There is no {_singular(resource)} `{name}` on {cluster}."
    if status == 409 and verb == "create":
        return f"A {_singular(resource)} named `{name}` already exists on {cluster}."
    if status == 409 and verb == "delete":
        return f"The {_singular(resource)} `{name}` on {cluster} was replaced meanwhile; nothing was deleted."
    if status == 409:
        what = "NetworkLogging" if resource == "networkloggings" else resource
        return f"Someone else changed {what} on {cluster} at the same time; try again."
    if status >= 500 or status == 0:
        return f"The API server of {cluster} did not answer (HTTP {status}); try again in a minute."
    return f"The API server of {cluster} refused the request (HTTP {status}: {_message(error)})."


def _singular(resource: str) -> str:
    return {"networkpolicies": "NetworkPolicy", "namespaces": "namespace"}.get(
        resource, resource.removesuffix("s")
    )


def _message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)
