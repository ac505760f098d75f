"""What the `/netlog` service tests share: a recorder for `respond`, the settings of a small
deployment (one operator, one operator group, an audit channel), and reply readers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.adapters.store import Store
from bot.render import ids
from bot.render.replies import Reply
from bot.services import Netlog
from bot.settings import EnvSettings, Settings, parse_file_config
from tests.clock import ManualClock
from tests.fakes.kube import FakeKube
from tests.store_queries import list_audit

OPERATOR, MEMBER, STRANGER = "U0OP", "U0GRP", "U0NOBODY"


@dataclass
class Answers:
    """What a click's `respond` was given, now and later (a rollout report answers from a background task)."""

    replies: list[Reply] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, reply: Reply) -> None:
        with self._arrived:
            self.replies.append(reply)
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Reply]:
        with self._arrived:
            assert self._arrived.wait_for(lambda: len(self.replies) >= count, timeout), self.replies
            return list(self.replies)


@dataclass
class Bench:
    netlog: Netlog
    clock: ManualClock

    def apply(self, user: str, change_id: str) -> Reply:
        """The click's first answer; a rollout report, if one follows, is left to `apply_all`."""
        answers = Answers()
        self.netlog.apply(user, change_id, answers)
        return answers.replies[0]

    def apply_all(self, user: str, change_id: str, count: int) -> list[Reply]:
        answers = Answers()
        self.netlog.apply(user, change_id, answers)
        return answers.wait_for(count)


def text_of(reply: Reply) -> str:
    return "\n".join(b["text"]["text"] for b in reply.blocks if b.get("type") == "section") or reply.text


def change_id(reply: Reply) -> str:
    actions = next(b for b in reply.blocks if b["type"] == "actions")
    apply_button = next(e for e in actions["elements"] if e["action_id"] == ids.APPLY)
    return str(apply_button["value"])


def settings_for(kubeconfig: Path, clusters: tuple[str, ...]) -> Settings:
    config = {
        "slack": {"default_channel": "C0DEF", "audit_channel": "C0AUDIT"},
        "access": {"operators": [OPERATOR], "operator_groups": ["S0OPS"]},
        "clusters": {name: {"context": name} for name in clusters},
        "routes": [{"match": {"namespace": "payments*"}, "channel": "C0PAY"}],
        "mutes": {"default_duration": "1h", "max_duration": "1d"},
        "digest": {"channels": ["C0PAY"]},
    }
    return Settings(EnvSettings(KUBECONFIG=str(kubeconfig)), parse_file_config(config))


def deny_spec(kube: FakeKube) -> dict[str, Any]:
    assert kube.networklogging is not None
    return dict(kube.networklogging["spec"]["cluster"]["deny"])


def audit_rows(store: Store) -> list[dict[str, Any]]:
    return list(reversed(list_audit(store)))


MakeBench = Callable[..., Bench]
