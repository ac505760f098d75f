"""A fake Kubernetes API server holding GKE's `NetworkLogging` object, namespaces and events.

A real HTTP server on loopback that the real `kubernetes` client reaches through a generated
kubeconfig (plain http, bearer token, one context per cluster name), or over HTTPS with a certificate
from a throwaway CA (tests/fakes/tls.py) as GKE mode reaches a control plane: nothing is patched, every
request goes through the client's own URL building, content types, retries and error handling.

It is faithful where our code can tell the difference:
- paths, verbs and content types are the API server's: `networkloggings` is cluster-scoped under
  `/apis/networking.gke.io/v1alpha1`, takes JSON merge patches (RFC 7386) and JSON patches (RFC 6902)
  and answers 415 to strategic merge patches like any custom resource; namespaces also take
  strategic merge patches (treated as merge patches, which is what they are for maps);
- every error is a `Status` object (kind, apiVersion, status Failure, message, reason, code, details)
  worded like the API server's: 401 without a valid bearer token (`tokens`, replaced with
  `accept_only` as tokens expire), 404 for absent objects and unknown paths,
  400 for a renamed object, 409 when a patch carries a stale `metadata.resourceVersion`, 422 when the
  CRD schema rejects a value (the four `log`/`delegate` fields are booleans);
- resourceVersions come from one cluster-wide counter, as etcd revisions do (treat them as opaque:
  compare for equality only); a patch that changes nothing bumps nothing; `generation` moves with the
  spec; unknown fields are pruned as a structural CRD schema does (with a `Warning` header);
- events are core/v1 Events in namespace "default" about the cluster-scoped object, as GKE records
  them, listed with `fieldSelector` (`=`, `==`, `!=` on the fields the API server indexes) and watched
  (`watch=true`): an HTTP/1.1 chunked stream of JSON lines `{"type": "ADDED", "object": {...}}`, the
  events already recorded first (only those after `resourceVersion` when one is given), then each new
  one as it is recorded, until the server ends the stream after `timeoutSeconds`;
  `simulate_nodes` makes anetd's per-node `UpdateNetworkLogging` events and the `InvalidNetworkLogging`
  warning appear after each change.
- `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews` answers whether the caller may do what
  `spec.resourceAttributes` names, as the API server does: 201 with the review echoed and
  `status.allowed` (plus `status.reason` when allowed, worded as the RBAC authorizer words it), from
  `grants` (a set of (verb, group, resource); None, the default, allows everything), and 422 for a
  spec that names neither or both of resourceAttributes and nonResourceAttributes.
Faults (any status, optionally filtered by method and path) and slow answers can be injected.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from tests.fakes.server import LoopbackServer

JSON = dict[str, Any]
GROUP, VERSION, PLURAL, KIND = "networking.gke.io", "v1alpha1", "networkloggings", "NetworkLogging"
NL_API_VERSION = f"{GROUP}/{VERSION}"
REVIEW_GROUP = "authorization.k8s.io"
USER = "netlog-bot@example-project.iam.gserviceaccount.com"  # who 403 messages say was refused
REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
    500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}  # fmt: skip
MERGE, JSON_PATCH = "application/merge-patch+json", "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
NO_RESOURCE = "the server could not find the requested resource"
CONFLICT = "Operation cannot be fulfilled on {}: the object has been modified; please apply your changes to the latest version and try again"  # noqa: E501
INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
EVENT_FIELDS = {"reason", "reportingComponent", "source", "type", "metadata.name", "metadata.namespace"}
EVENT_FIELDS |= {f"involvedObject.{field}" for field in INVOLVED}  # what the API server indexes
#: The namespaced resources served besides events: pods, workloads (read) and NetworkPolicies.
WORKLOADS = {
    "Deployment": ("apps", "deployments"),
    "ReplicaSet": ("apps", "replicasets"),
    "StatefulSet": ("apps", "statefulsets"),
    "DaemonSet": ("apps", "daemonsets"),
    "Job": ("batch", "jobs"),
}
SERVED = {("", "pods"), ("networking.k8s.io", "networkpolicies"), *WORKLOADS.values()}
KINDS = {"pods": "Pod", "networkpolicies": "NetworkPolicy"} | {
    plural: kind for kind, (_, plural) in WORKLOADS.items()
}
BOOL = "boolean"
NL_SCHEMA: JSON = {"spec": {"cluster": {side: {"log": BOOL, "delegate": BOOL} for side in ("allow", "deny")}}}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # metav1.Time: RFC 3339, whole seconds


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, the raw text if it is not JSON, None if empty
    status: int = 0  # the answer's HTTP status, set once answered


@dataclass(frozen=True)
class _Target:
    """What a path names, for routing and for wording errors like the API server does."""

    group: str
    plural: str
    name: str = ""
    namespace: str = ""

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def details(self) -> JSON:
        found = {"name": self.name, "group": self.group, "kind": self.plural}
        return {k: v for k, v in found.items() if v}


@dataclass
class _Fault:
    status: int
    remaining: int
    methods: set[str] | None
    path_contains: str | None


@dataclass
class _Stream:
    """A watch's answer: the lines the handler sends, one chunk each, while the generator runs."""

    lines: Iterator[bytes]


_Handler = Callable[[_Target, Request, JSON], tuple[int, JSON]]  # (target, request, extra headers)
WATCH_DEFAULT_TIMEOUT = 1800  # the API server's --min-request-timeout, when a watch names none


class ApiError(Exception):
    def __init__(self, code: int, message: str, details: JSON | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def status_body(code: int, message: str, details: JSON | None = None) -> JSON:
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
    }
    body["reason"] = REASONS.get(code, "Unknown")
    if details:
        body["details"] = details
    return body | {"code": code}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 (add, remove, replace, move, copy, test); a failing operation is a 422 as in kube."""
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise ApiError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)

    def split(pointer: Any) -> tuple[Any, str]:  # the parent container and the last key
        if not isinstance(pointer, str) or not pointer.startswith("/"):
            raise ApiError(422, f"invalid JSON pointer: {pointer!r}")
        *parents, last = (p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/"))
        node = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, last

    def take(pointer: Any, *, remove: bool) -> Any:
        parent, key = split(pointer)
        index: Any = int(key) if isinstance(parent, list) else key
        return parent.pop(index) if remove else copy.deepcopy(parent[index])

    for op in ops:
        kind, path = op.get("op"), op.get("path")
        try:
            if kind == "test":
                if take(path, remove=False) != op.get("value"):
                    raise ApiError(422, f"testing value {path} failed: test failed")
                continue
            if kind in ("move", "copy"):
                value = take(op["from"], remove=kind == "move")
            elif kind in ("add", "replace"):
                value = op.get("value")
            elif kind != "remove":
                raise ApiError(422, f"Unexpected kind: {kind}")
            if kind in ("remove", "replace"):
                take(path, remove=True)
            if kind != "remove":
                parent, key = split(path)
                if isinstance(parent, list):
                    parent.insert(len(parent) if key == "-" else int(key), value)
                else:
                    parent[key] = value
        except (KeyError, IndexError, ValueError, TypeError) as error:
            raise ApiError(422, f"{kind} operation does not apply: doc is missing path: {path}") from error
    return doc


def _go_type(value: Any) -> str:
    kinds = (
        (bool, BOOL),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    )
    return next((name for cls, name in kinds if isinstance(value, cls)), "null")


def _check(node: JSON, schema: JSON, at: str, errors: list[str], pruned: list[str]) -> None:
    """Prune unknown and null fields and check types, as a structural CRD schema does."""
    for key in list(node):
        path, value, rule = f"{at}{key}", node[key], schema.get(key)
        if key not in schema or value is None:
            del node[key]
            if key not in schema:
                pruned.append(path)
        elif rule == BOOL and not isinstance(value, bool):
            kind = _go_type(value)
            errors.append(
                f'{path}: Invalid value: "{kind}": {path} in body must be of type boolean: "{kind}"'
            )
        elif isinstance(rule, dict) and not isinstance(value, dict):
            kind = _go_type(value)
            errors.append(f'{path}: Invalid value: "{kind}": {path} in body must be of type object: "{kind}"')
        elif isinstance(rule, dict):
            _check(value, rule, f"{path}.", errors, pruned)


def _selector(text: str, allowed: set[str] | None) -> list[tuple[str, str, str]]:
    """Equality-based selectors: `k=v`, `k==v`, `k!=v`; for labels (allowed None) also `k` and `!k`."""
    terms = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        if match := re.fullmatch(r"([^=!]+?)\s*(!=|==|=)\s*(.*)", term):
            key, op, value = match.groups()
            if allowed is not None and key not in allowed:
                raise ApiError(400, f"field label not supported: {key}")
            terms.append((key, "!=" if op == "!=" else "=", value))
        elif allowed is None and re.fullmatch(r"!?[\w./-]+", term):
            terms.append((term.lstrip("!"), "!" if term.startswith("!") else "exists", ""))
        else:
            raise ApiError(
                400, f"unable to parse requirement: invalid selector: '{text}'; can't understand '{term}'"
            )
    return terms


def _selected(terms: list[tuple[str, str, str]], get: Callable[[str], str | None]) -> bool:
    def one(key: str, op: str, value: str) -> bool:
        got = get(key)
        return {"=": got == value, "!=": got != value, "exists": got is not None, "!": got is None}[op]

    return all(one(*term) for term in terms)


def _flag(obj: JSON, side: str, key: str) -> bool:
    return obj.get("spec", {}).get("cluster", {}).get(side, {}).get(key) is True


def _dig(obj: JSON, dotted: str) -> str:
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def write_kubeconfig(path: Path, clusters: Mapping[str, FakeKube]) -> Path:
    """A kubeconfig with one context (and cluster and token user) per name; current-context = first."""
    if not clusters:
        raise ValueError("a kubeconfig needs at least one context")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": fake.url}} for n, fake in clusters.items()],
        "users": [{"name": f"{n}-user", "user": {"token": fake.token}} for n, fake in clusters.items()],
        "contexts": [{"name": n, "context": {"cluster": n, "user": f"{n}-user"}} for n in clusters],
        "current-context": next(iter(clusters)),
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class FakeKube(LoopbackServer):
    def __init__(self, token: str = "fake-token", *, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(_handler_for(self), tls=tls)
        self.token = token  # the one written into kubeconfigs
        self.tokens = {token}  # the bearer tokens accepted now
        self._lock = threading.RLock()
        self._recorded = threading.Condition(self._lock)  # wakes watches when an event is recorded
        self._revision = 0
        self._last_event_ns = 0
        self.crd_installed = True  # False: the cluster is not Dataplane V2, the whole API group 404s
        self.networklogging: JSON | None = {
            "apiVersion": NL_API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": "default",
                "uid": str(uuid.uuid4()),
                "resourceVersion": self._next_revision(),
                "generation": 1,
                "creationTimestamp": now(),
            },
            "spec": {
                "cluster": {
                    "allow": {"log": False, "delegate": False},
                    "deny": {"log": False, "delegate": False},
                }
            },
        }
        #: What SelfSubjectAccessReview allows, as (verb, group, resource) with "" for the core
        #: group; None allows everything, as a cluster-admin binding does.
        self.grants: set[tuple[str, str, str]] | None = None
        self.namespaces: dict[str, JSON] = {}
        for name in ("default", "kube-node-lease", "kube-public", "kube-system"):
            self.add_namespace(name)
        self.events: list[JSON] = []
        #: Namespaced objects by (API group, plural) and (namespace, name): pods, workloads, policies.
        self.objects: dict[tuple[str, str], dict[tuple[str, str], JSON]] = {}
        self.requests: list[Request] = []
        self._faults: list[_Fault] = []
        self._slow: list[float] = []
        self._callbacks: list[Callable[[JSON], None]] = []
        self._nodes, self._node_delay = 0, 0.0
        self._timers: list[threading.Timer] = []
        self._stopping = threading.Event()

    # lifecycle

    def stop(self) -> None:
        self._stopping.set()  # wakes slow answers
        with self._lock:
            self._recorded.notify_all()  # and watches
            for timer in self._timers:
                timer.cancel()
        super().stop()
        self._stopping.clear()

    @property
    def url(self) -> str:
        return self.root

    def write_kubeconfig(self, path: Path, contexts: Sequence[str]) -> Path:
        """One context per name, all pointing at this server; current-context = the first."""
        return write_kubeconfig(path, dict.fromkeys(contexts, self))

    # state

    def add_namespace(
        self, name: str, annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None
    ) -> JSON:
        with self._lock:
            meta: JSON = {"name": name, "uid": str(uuid.uuid4()), "resourceVersion": self._next_revision()}
            meta |= {
                "creationTimestamp": now(),
                "labels": {**(labels or {}), "kubernetes.io/metadata.name": name},
            }
            if annotations:
                meta["annotations"] = dict(annotations)
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
            namespace |= {"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            self.namespaces[name] = namespace
            return namespace

    def add_pod(
        self,
        namespace: str,
        name: str,
        labels: Mapping[str, str],
        ports: Mapping[str, tuple[int, str]] | None = None,
        owner: tuple[str, str] | None = None,
    ) -> JSON:
        """A running pod; `ports` are its containers' named ports, `owner` its (kind, name)."""
        meta: JSON = {"name": name, "namespace": namespace, "labels": dict(labels)}
        if owner:
            meta["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": owner[0],
                    "name": owner[1],
                    "uid": str(uuid.uuid4()),
                    "controller": True,
                }
            ]
        spec = {"containers": [_container(ports)]}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": spec,
            "status": {"phase": "Running"},
        }
        return self._store_object("", "pods", pod)

    def add_workload(
        self,
        kind: str,
        namespace: str,
        name: str,
        labels: Mapping[str, str],
        ports: Mapping[str, tuple[int, str]] | None = None,
    ) -> JSON:
        """A Deployment, ReplicaSet, StatefulSet, DaemonSet or Job, with its pod template's labels."""
        group, plural = WORKLOADS[kind]
        selector = {"matchLabels": dict(labels)}
        template = {"metadata": {"labels": dict(labels)}, "spec": {"containers": [_container(ports)]}}
        obj = {
            "apiVersion": f"{group}/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": selector, "template": template},
        }
        return self._store_object(group, plural, obj)

    def add_network_policy(self, manifest: JSON) -> JSON:
        return self._store_object("networking.k8s.io", "networkpolicies", copy.deepcopy(manifest))

    def network_policies(self, namespace: str | None = None) -> list[JSON]:
        with self._lock:
            found = self.objects.get(("networking.k8s.io", "networkpolicies"), {})
            return [copy.deepcopy(o) for (ns, _), o in sorted(found.items()) if namespace in (None, ns)]

    def _store_object(self, group: str, plural: str, obj: JSON) -> JSON:
        with self._lock:
            meta = obj.setdefault("metadata", {})
            meta |= {
                "uid": str(uuid.uuid4()),
                "resourceVersion": self._next_revision(),
                "creationTimestamp": now(),
            }
            if plural == "networkpolicies":
                meta["generation"] = 1
            self.objects.setdefault((group, plural), {})[(meta["namespace"], meta["name"])] = obj
            return copy.deepcopy(obj)

    def add_event(
        self,
        reason: str,
        message: str,
        type: str = "Normal",
        involved_name: str = "default",
        involved_kind: str = KIND,
        *,
        namespace: str = "default",
        count: int = 1,
        at: datetime | None = None,
        host: str | None = None,
    ) -> JSON:
        """An Event as anetd records it; `at` sets first/lastTimestamp (default: now)."""
        with self._lock:
            self._last_event_ns = max(time.time_ns(), self._last_event_ns + 1)
            stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else now()
            api_version = NL_API_VERSION if involved_kind == KIND else "v1"
            involved = {"apiVersion": api_version, "kind": involved_kind, "name": involved_name}
            if involved_kind == KIND and involved_name == "default" and self.networklogging:
                involved["uid"] = self.networklogging["metadata"]["uid"]
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{involved_name}.{self._last_event_ns:x}",
                    "namespace": namespace,
                    "uid": str(uuid.uuid4()),
                    "resourceVersion": self._next_revision(),
                    "creationTimestamp": stamp,
                },
                "involvedObject": involved,
                "reason": reason,
                "message": message,
                "type": type,
                "count": count,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "source": {"component": "anetd", **({"host": host} if host else {})},
                "reportingComponent": "anetd",
                "reportingInstance": host or "",
            }
            self.events.append(event)
            self._recorded.notify_all()
            return event

    def requests_to(self, path_contains: str, method: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if path_contains in r.path and method in (None, r.method)]

    # behaviour knobs

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        methods: set[str] | None = None,
        path_contains: str | None = None,
    ) -> None:
        """The next `count` matching requests (after the token check) get this status and a Status body."""
        with self._lock:
            self._faults.append(_Fault(status, count, methods, path_contains))

    def grant_only(self, *grants: tuple[str, str, str]) -> None:
        """From now on the bot may do only these (verb, group, resource), as its RBAC bindings say."""
        with self._lock:
            self.grants = set(grants)

    def accept_only(self, *tokens: str) -> None:
        """From now on, only these bearer tokens are valid (say, as the earlier ones expire)."""
        with self._lock:
            self.tokens = set(tokens)

    def slow_next(self, seconds: float, count: int = 1) -> None:
        """Delay the next `count` answers. Note the client's urllib3 retries a timed-out GET 3 times."""
        with self._lock:
            self._slow += [seconds] * count

    def on_patch_networklogging(self, callback: Callable[[JSON], None]) -> None:
        """Call `callback(new object)` after each patch that changed the object, as a watch would."""
        with self._lock:
            self._callbacks.append(callback)

    def simulate_nodes(self, count: int, *, delay: float = 0.0) -> None:
        """After each change, `count` nodes record UpdateNetworkLogging (and one InvalidNetworkLogging
        warning if a side has log false with delegate true), before the patch answers or `delay` later."""
        with self._lock:
            self._nodes, self._node_delay = count, delay

    # the server

    def _next_revision(self) -> str:
        self._revision += 1
        return str(self._revision)

    def _serve(
        self, method: str, raw_path: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, JSON | _Stream, JSON]:
        url = urlsplit(raw_path)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        request = Request(
            method, url.path, dict(parse_qsl(url.query)), {k.lower(): v for k, v in headers.items()}, body
        )
        with self._lock:
            self.requests.append(request)
            delay = self._slow.pop(0) if self._slow else 0.0
        if delay:
            self._stopping.wait(delay)
        extra: JSON = {}
        with self._lock:
            try:
                answer = self._answer(request, extra)
            except ApiError as error:
                answer = error.code, status_body(error.code, error.message, error.details)
            request.status = answer[0]
        return answer[0], answer[1], extra

    def _answer(self, request: Request, extra_headers: JSON) -> tuple[int, JSON | _Stream]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            raise ApiError(401, "Unauthorized")
        target, handlers = self._route(request.path)
        for fault in self._faults:
            if (fault.methods is None or request.method in fault.methods) and (
                fault.path_contains is None or fault.path_contains in request.path
            ):
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
                raise self._fault(fault.status, request.method, target, extra_headers)
        if target is None:
            raise ApiError(404, NO_RESOURCE)
        if request.query.get("watch", "").lower() in ("true", "1"):
            if target.plural != "events" or request.method != "GET":
                raise ApiError(405, "watch is not implemented by the fake")
            return 200, self._watch_events(target, request)
        handler = handlers.get(request.method)
        if handler is None:
            raise ApiError(
                405, "the server does not allow this method on the requested resource", target.details()
            )
        return handler(target, request, extra_headers)

    def _route(self, path: str) -> tuple[_Target | None, dict[str, _Handler]]:
        nl = re.fullmatch(rf"/apis/{re.escape(GROUP)}/{VERSION}/{PLURAL}(?:/([^/]+))?", path)
        if nl and self.crd_installed:
            if nl[1]:
                return _Target(GROUP, PLURAL, nl[1]), {"GET": self._get_nl, "PATCH": self._patch_nl}
            return _Target(GROUP, PLURAL), {"GET": self._list_nl}
        if path == "/api/v1/namespaces":
            return _Target("", "namespaces"), {"GET": self._list_namespaces}
        if ns := re.fullmatch(r"/api/v1/namespaces/([^/]+)", path):
            return _Target("", "namespaces", ns[1]), {
                "GET": self._get_namespace,
                "PATCH": self._patch_namespace,
            }
        if path == f"/apis/{REVIEW_GROUP}/v1/selfsubjectaccessreviews":
            return _Target(REVIEW_GROUP, "selfsubjectaccessreviews"), {"POST": self._review}
        if events := re.fullmatch(r"/api/v1(?:/namespaces/([^/]+))?/events", path):
            return _Target("", "events", namespace=events[1] or ""), {"GET": self._list_events}
        namespaced = re.fullmatch(
            r"/(?:api/v1|apis/(apps|batch|networking\.k8s\.io)/v1)(?:/namespaces/([^/]+))?/([a-z]+)(?:/([^/]+))?",
            path,
        )
        if namespaced and (namespaced[1] or "", namespaced[3]) in SERVED:
            group, namespace, plural, name = (
                namespaced[1] or "",
                namespaced[2] or "",
                namespaced[3],
                namespaced[4],
            )
            target = _Target(group, plural, name or "", namespace)
            if name and namespace:
                handlers: dict[str, _Handler] = {"GET": self._get_object}
                if plural == "networkpolicies":
                    handlers["DELETE"] = self._delete_object
                return target, handlers
            if name:
                return None, {}
            handlers = {"GET": self._list_objects}
            if plural == "networkpolicies" and namespace:
                handlers["POST"] = self._create_object
            return target, handlers
        return None, {}

    @staticmethod
    def _fault(code: int, method: str, target: _Target | None, extra_headers: JSON) -> ApiError:
        target = target or _Target("", "")
        named = f'{target.qualified} "{target.name}"' if target.name else target.qualified
        verb = {"GET": "get" if target.name else "list", "POST": "create"}.get(method, method.lower())
        scope = f'in the namespace "{target.namespace}"' if target.namespace else "at the cluster scope"
        details = target.details()
        if code in (429, 503):
            extra_headers["Retry-After"] = "1"
            details["retryAfterSeconds"] = 1
        if code == 500:
            details["causes"] = [{"message": "injected fault"}]
        messages = {
            403: f'{named} is forbidden: User "{USER}" cannot {verb} resource "{target.plural}" '
            f'in API group "{target.group}" {scope}',
            404: f"{named} not found" if target.name else NO_RESOURCE,
            409: CONFLICT.format(named),
            429: "Too many requests, please try again later.",
            500: "Internal error occurred: injected fault",
            503: "the server is currently unable to handle the request",
        }
        return ApiError(code, messages.get(code, f"injected {code}"), details)

    @staticmethod
    def _list(kind: str, api_version: str, items: list[JSON], revision: int) -> tuple[int, JSON]:
        meta = {"resourceVersion": str(revision)}
        return 200, {"apiVersion": api_version, "kind": kind, "metadata": meta, "items": copy.deepcopy(items)}

    def _get_nl(self, target: _Target, request: Request, _: JSON) -> tuple[int, JSON]:
        if target.name != "default" or self.networklogging is None:
            raise ApiError(404, f'{target.qualified} "{target.name}" not found', target.details())
        return 200, copy.deepcopy(self.networklogging)

    def _list_nl(self, target: _Target, request: Request, _: JSON) -> tuple[int, JSON]:
        terms = _selector(request.query.get("fieldSelector", ""), {"metadata.name", "metadata.namespace"})
        items = [o for o in [self.networklogging] if o and _selected(terms, functools.partial(_dig, o))]
        return self._list(f"{KIND}List", NL_API_VERSION, items, self._revision)

    def _patched(self, target: _Target, request: Request, current: JSON, accepted: tuple[str, ...]) -> JSON:
        """The object with the request's patch applied, checked as the API server checks it."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in accepted:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                + ", ".join((*accepted, "application/apply-patch+yaml")),
            )
        if not isinstance(request.body, dict | list):
            raise ApiError(400, "error decoding patch: invalid JSON or not a JSON object")
        if content_type == JSON_PATCH:
            patched = json_patch(current, request.body)
        elif isinstance(request.body, list):
            raise ApiError(400, "json: cannot unmarshal array into Go value of type map[string]interface {}")
        else:
            patched = merge_patch(current, request.body)
        if not isinstance(patched, dict):
            raise ApiError(400, "the patch did not produce an object")
        patched = copy.deepcopy(patched)  # merge_patch shares untouched subtrees with `current`
        meta, old = patched.setdefault("metadata", {}), current["metadata"]
        if meta.get("name") != target.name:
            url_name, body_name = target.name, meta.get("name")
            raise ApiError(
                400, f"the name of the object ({body_name}) does not match the name on the URL ({url_name})"
            )
        if meta.get("resourceVersion") not in (None, old["resourceVersion"]):
            raise ApiError(409, CONFLICT.format(f'{target.qualified} "{target.name}"'), target.details())
        for key in ("uid", "creationTimestamp", "resourceVersion", "generation"):  # set by the server only
            if key in old:
                meta[key] = old[key]
        patched["apiVersion"], patched["kind"] = current["apiVersion"], current["kind"]
        return patched

    def _patch_nl(self, target: _Target, request: Request, headers: JSON) -> tuple[int, JSON]:
        current = self._get_nl(target, request, headers)[1]
        new = self._patched(target, request, current, (JSON_PATCH, MERGE))
        errors: list[str] = []
        pruned: list[str] = []
        body = {k: v for k, v in new.items() if k not in ("apiVersion", "kind", "metadata")}
        _check(body, NL_SCHEMA, "", errors, pruned)
        if errors:
            causes = [{"reason": "FieldValueInvalid", "message": e, "field": e.split(":")[0]} for e in errors]
            details = {"name": target.name, "group": GROUP, "kind": KIND, "causes": causes}
            raise ApiError(422, f'{KIND}.{GROUP} "{target.name}" is invalid: ' + ", ".join(errors), details)
        if pruned:
            headers["Warning"] = ", ".join(f'299 - "unknown field \\"{p}\\""' for p in pruned)
        new = {k: new[k] for k in ("apiVersion", "kind", "metadata")} | body
        if new == current:  # a no-op patch writes nothing
            return 200, new
        if new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = current["metadata"].get("generation", 0) + 1
        new["metadata"]["resourceVersion"] = self._next_revision()
        self.networklogging = new
        for callback in self._callbacks:
            callback(copy.deepcopy(new))
        if self._nodes:
            self._nodes_react(current, new)
        return 200, copy.deepcopy(new)

    def _review(self, target: _Target, request: Request, _: JSON) -> tuple[int, JSON]:
        body: JSON = request.body if isinstance(request.body, dict) else {}
        spec: JSON = body["spec"] if isinstance(body.get("spec"), dict) else {}
        attributes = spec.get("resourceAttributes")
        if (attributes is None) == (spec.get("nonResourceAttributes") is None):
            raise ApiError(
                422,
                'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
                'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes '
                "must be specified",
            )
        key = (
            str((attributes or {}).get("verb", "")),
            str((attributes or {}).get("group", "")),
            str((attributes or {}).get("resource", "")),
        )
        allowed = attributes is not None and (self.grants is None or key in self.grants)
        status: JSON = {"allowed": allowed}
        if allowed:
            binding = 'ClusterRoleBinding "netlog-bot" of ClusterRole "netlog-bot"'
            status["reason"] = f'RBAC: allowed by {binding} to User "{USER}"'
        review = {"kind": "SelfSubjectAccessReview", "apiVersion": f"{REVIEW_GROUP}/v1"}
        return 201, review | {"metadata": {"creationTimestamp": None}, "spec": spec, "status": status}

    def _nodes_react(self, old: JSON, new: JSON) -> None:
        def logging(obj: JSON) -> bool:
            return _flag(obj, "allow", "log") or _flag(obj, "deny", "log")

        verb = {(False, True): "enabled", (True, False): "disabled"}.get(
            (logging(old), logging(new)), "updated"
        )
        revision, nodes = new["metadata"]["resourceVersion"], self._nodes
        invalid = [
            f"spec.cluster.{side}"
            for side in ("allow", "deny")
            if _flag(new, side, "delegate") and not _flag(new, side, "log")
        ]

        def record() -> None:
            for node in range(nodes):
                message = f"{verb} network policy logging (resourceVersion = {revision})"
                self.add_event("UpdateNetworkLogging", message, host=f"gke-fake-default-pool-node-{node}")
            if invalid:
                message = f"invalid network policy logging configuration (resourceVersion = {revision}): "
                message += ", ".join(f"{side}.delegate is true while {side}.log is false" for side in invalid)
                self.add_event(
                    "InvalidNetworkLogging", message, "Warning", host="gke-fake-default-pool-node-0"
                )

        if self._node_delay <= 0:
            record()
            return
        timer = threading.Timer(self._node_delay, record)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _namespace(self, target: _Target) -> JSON:
        if target.name not in self.namespaces:
            raise ApiError(404, f'namespaces "{target.name}" not found', target.details())
        return self.namespaces[target.name]

    def _get_namespace(self, target: _Target, request: Request, _: JSON) -> tuple[int, JSON]:
        return 200, copy.deepcopy(self._namespace(target))

    def _list_namespaces(self, target: _Target, request: Request, _: JSON) -> tuple[int, JSON]:
        fields = _selector(request.query.get("fieldSelector", ""), {"metadata.name", "status.phase"})
        labels = _selector(request.query.get("labelSelector", ""), None)
        items = [
            n
            for n in sorted(self.namespaces.values(), key=lambda n: str(n["metadata"]["name"]))
            if _selected(fields, functools.partial(_dig, n))
            and _selected(labels, n["metadata"].get("labels", {}).get)
        ]
        return self._list("NamespaceList", "v1", items, self._revision)

    def _patch_namespace(self, target: _Target, request: Request, _: JSON) -> tuple[int, JSON]:
        current = self._namespace(target)
        new = self._patched(target, request, current, (JSON_PATCH, MERGE, STRATEGIC))
        for key in ("annotations", "labels"):
            values = new["metadata"].get(key)
            if values is not None and not (
                isinstance(values, dict) and all(isinstance(v, str) for v in values.values())
            ):
                raise ApiError(400, f"json: cannot unmarshal into Go struct field ObjectMeta.metadata.{key}")
        if new["metadata"].get("annotations") == {}:
            del new["metadata"]["annotations"]  # the API server omits empty maps
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = target.name  # always kept
        if new != current:
            new["metadata"]["resourceVersion"] = self._next_revision()
            self.namespaces[target.name] = new
        return 200, copy.deepcopy(new)

    def _objects(self, target: _Target) -> dict[tuple[str, str], JSON]:
        return self.objects.setdefault((target.group, target.plural), {})

    def _get_object(self, target: _Target, request: Request, _: JSON) -> tuple[int, JSON]:
        found = self._objects(target).get((target.namespace, target.name))
        if found is None:
            raise ApiError(404, f'{target.qualified} "{target.name}" not found', target.details())
        return 200, copy.deepcopy(found)

    def _list_objects(self, target: _Target, request: Request, _: JSON) -> tuple[int, JSON]:
        labels = _selector(request.query.get("labelSelector", ""), None)
        items = [
            o
            for (ns, _), o in sorted(self._objects(target).items())
            if target.namespace in ("", ns) and _selected(labels, o["metadata"].get("labels", {}).get)
        ]
        kind = KINDS[target.plural]
        version = f"{target.group}/v1" if target.group else "v1"
        return self._list(f"{kind}List", version, items, self._revision)

    def _create_object(self, target: _Target, request: Request, _: JSON) -> tuple[int, JSON]:
        body = request.body
        if not isinstance(body, dict) or body.get("kind") != KINDS[target.plural]:
            raise ApiError(
                400, f"the body of the request was in an unknown format; expected {KINDS[target.plural]}"
            )
        meta = body.setdefault("metadata", {})
        name = meta.get("name", "")
        if meta.setdefault("namespace", target.namespace) != target.namespace:
            raise ApiError(
                400, "the namespace of the provided object does not match the namespace sent on the request"
            )
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) or len(name) > 253:
            details = {"name": name, "group": target.group, "kind": KINDS[target.plural]}
            raise ApiError(
                422,
                f'{KINDS[target.plural]}.{target.group} "{name}" is invalid: metadata.name: Invalid value',
                details,
            )
        if (target.namespace, name) in self._objects(target):
            named = _Target(target.group, target.plural, name, target.namespace)
            raise ApiError(409, f'{target.qualified} "{name}" already exists', named.details())
        return 201, self._store_object(target.group, target.plural, body)

    def _delete_object(self, target: _Target, request: Request, _: JSON) -> tuple[int, JSON]:
        found = self._objects(target).get((target.namespace, target.name))
        if found is None:
            raise ApiError(404, f'{target.qualified} "{target.name}" not found', target.details())
        wanted = ((request.body or {}).get("preconditions") or {}) if isinstance(request.body, dict) else {}
        if wanted.get("uid") and wanted["uid"] != found["metadata"]["uid"]:
            message = (
                f'Operation cannot be fulfilled on {target.qualified} "{target.name}": Precondition failed: '
                f"UID in precondition: {wanted['uid']}, UID in object meta: {found['metadata']['uid']}"
            )
            raise ApiError(409, message, target.details())
        del self._objects(target)[(target.namespace, target.name)]
        details = target.details() | {"uid": str(uuid.uuid4())}
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    def _list_events(self, target: _Target, request: Request, _: JSON) -> tuple[int, JSON]:
        terms = _selector(request.query.get("fieldSelector", ""), EVENT_FIELDS)

        items = [
            e
            for e in self.events
            if target.namespace in ("", e["metadata"]["namespace"])
            and _selected(terms, functools.partial(_event_field, e))
        ]
        return self._list("EventList", "v1", items, self._revision)

    def _watch_events(self, target: _Target, request: Request) -> _Stream:
        terms = _selector(request.query.get("fieldSelector", ""), EVENT_FIELDS)
        since, timeout = request.query.get("resourceVersion", ""), request.query.get("timeoutSeconds", "")
        if not (since or "0").isdigit():
            raise ApiError(400, f'resourceVersion: Invalid value: "{since}": must be a resourceVersion')
        if not (timeout or "0").isdigit():
            raise ApiError(400, f'timeoutSeconds: Invalid value: "{timeout}": must be an integer')
        deadline = time.monotonic() + (int(timeout) if timeout else WATCH_DEFAULT_TIMEOUT)

        def matching(event: JSON) -> bool:
            return target.namespace in ("", event["metadata"]["namespace"]) and _selected(
                terms, functools.partial(_event_field, event)
            )

        def lines() -> Iterator[bytes]:
            seen = int(since or "0")  # "0" and none both mean: what is recorded now, then what comes
            while True:
                with self._lock:
                    fresh = [e for e in self.events if int(e["metadata"]["resourceVersion"]) > seen]
                    seen = max([seen, *(int(e["metadata"]["resourceVersion"]) for e in fresh)])
                    fresh = copy.deepcopy([e for e in fresh if matching(e)])
                    left = deadline - time.monotonic()
                    if not fresh and (left <= 0 or self._stopping.is_set()):
                        return  # the API server ends a watch at its timeout
                    if not fresh:
                        self._recorded.wait(left)
                for event in fresh:
                    yield json.dumps({"type": "ADDED", "object": event}).encode() + b"\n"

        return _Stream(lines())


def _container(ports: Mapping[str, tuple[int, str]] | None) -> JSON:
    container: JSON = {"name": "main", "image": "example/app:1"}
    if ports:
        container["ports"] = [
            {"name": name, "containerPort": number, "protocol": protocol}
            for name, (number, protocol) in ports.items()
        ]
    return container


def _event_field(event: JSON, key: str) -> str:
    return _dig(event, "source.component" if key == "source" else key)


def _handler_for(fake: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, body, headers = fake._serve(self.command, self.path, dict(self.headers.items()), raw)
            if isinstance(body, _Stream):
                self._stream(body, headers)
                return
            data = json.dumps(body).encode()
            with contextlib.suppress(OSError):  # the client may have timed out and gone
                self.send_response(status)
                for name, value in (headers | {"Content-Type": "application/json"}).items():
                    self.send_header(name, str(value))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def _stream(self, stream: _Stream, headers: JSON) -> None:
            """A watch: chunked transfer encoding, which needs HTTP/1.1; one JSON line per chunk.
            The connection is closed after it, and said so: a client that pooled it would otherwise
            send its next request on a socket about to close (and fail it, with no retry)."""
            self.protocol_version = "HTTP/1.1"
            with contextlib.suppress(OSError):  # the client may stop watching at any time
                self.send_response(200)
                for name, value in (headers | {"Content-Type": "application/json"}).items():
                    self.send_header(name, str(value))
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                for line in stream.lines:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True

        do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
