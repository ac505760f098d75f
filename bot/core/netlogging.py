"""The `NetworkLogging` resource (`networking.gke.io/v1alpha1`, `default`): what it means and how to
change it safely. Facts from the reference doc: only `spec.cluster.{allow,deny}.{log,delegate}` exist;
`log: false` with `delegate: true` is accepted by the API server but ignored by the nodes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.core.commands import SetLogging

GROUP, VERSION, PLURAL, NAME = "networking.gke.io", "v1alpha1", "networkloggings", "default"
DENY_ANNOTATION = "policy.network.gke.io/enable-deny-logging"
ALLOW_ANNOTATION = "policy.network.gke.io/enable-logging"


class Refused(ValueError):
    """A change that must not be made; the message explains why and what to do instead."""


@dataclass(frozen=True, slots=True)
class LoggingSpec:
    allow_log: bool = False
    allow_delegate: bool = False
    deny_log: bool = False
    deny_delegate: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any] | None) -> LoggingSpec:
        cluster = ((obj or {}).get("spec") or {}).get("cluster") or {}
        allow, deny = cluster.get("allow") or {}, cluster.get("deny") or {}
        return cls(
            bool(allow.get("log")),
            bool(allow.get("delegate")),
            bool(deny.get("log")),
            bool(deny.get("delegate")),
        )

    def get(self, kind: str) -> tuple[bool, bool]:
        return (
            (self.allow_log, self.allow_delegate) if kind == "allow" else (self.deny_log, self.deny_delegate)
        )

    def with_(self, kind: str, log: bool, delegate: bool) -> LoggingSpec:
        if kind == "allow":
            return replace(self, allow_log=log, allow_delegate=delegate)
        return replace(self, deny_log=log, deny_delegate=delegate)

    def short(self, kind: str) -> str:
        log, delegate = self.get(kind)
        return f"{kind}: log={str(log).lower()}, delegate={str(delegate).lower()}"


def meaning(spec: LoggingSpec, kind: str) -> str:
    log, delegate = spec.get(kind)
    if not log and delegate:
        return (
            f"invalid: delegate without log. The nodes ignore it and report InvalidNetworkLogging; "
            f"nothing {'allowed' if kind == 'allow' else 'denied'} is logged."
        )
    if not log:
        return f"{'Allowed' if kind == 'allow' else 'Denied'} connections are not logged."
    if kind == "deny":
        if delegate:
            return f'Denied connections are logged only in namespaces annotated `{DENY_ANNOTATION}: "true"`.'
        return "Every denied connection is logged."
    if delegate:
        return f'Allowed connections are logged only for policies annotated `{ALLOW_ANNOTATION}: "true"`.'
    return "Every allowed connection that matched a policy is logged (high volume)."


@dataclass(frozen=True, slots=True)
class Plan:
    before: LoggingSpec
    after: LoggingSpec
    patch: dict[str, Any]
    warnings: tuple[str, ...]

    @property
    def changes_nothing(self) -> bool:
        return self.before == self.after


def plan(before: LoggingSpec, command: SetLogging) -> Plan:
    """The merge patch for `command`, never writing `log: false` with `delegate: true`."""
    kind = command.kind
    log, delegate = before.get(kind)
    if command.action == "enable":
        log, delegate = True, command.delegate
    elif command.action == "disable":
        log, delegate = False, False  # turning log off also sends delegate: false
    else:
        if command.delegate and not log:
            raise Refused(
                f"{kind} logging is off, and delegation without logging is invalid (the nodes ignore it). "
                f"Use `/netlog enable {kind} --delegate` to turn both on."
            )
        delegate = command.delegate
    after = before.with_(kind, log, delegate)
    patch = {"spec": {"cluster": {kind: {"log": log, "delegate": delegate}}}}
    warnings = []
    if kind == "allow" and log and not delegate:
        warnings.append(
            "Logging every allowed connection can produce a lot of log volume: GKE logs up to 500 lines "
            "per second per node, and Cloud Logging storage is billed. Consider `--delegate`."
        )
    if kind == "deny" and log and delegate:
        warnings.append(
            "With delegation, only namespaces annotated for deny logging are logged: "
            "use `/netlog ns-logging NAMESPACE on`."
        )
    return Plan(before, after, patch, tuple(warnings))
