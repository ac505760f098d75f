"""Confirmation cards: a mutating command is saved under a change ID and shown with Apply/Cancel; a
click claims it exactly once (a second click is told what happened), and a card older than 10
minutes expires. The saved command goes through one codec, which also reads the rows written
before it existed: `{"command": {"type": "SetLogging", ...}, "cluster": ..., "text": ...}`, with
durations as seconds."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Tag, TypeAdapter

from bot.adapters.store import Store
from bot.core import commands as cmd
from bot.render.replies import Card, Reply

CARD_LIFETIME = timedelta(minutes=10)

Change = cmd.SetLogging | cmd.NamespaceLogging | cmd.Mute | cmd.Unmute | cmd.ApplyProposal | cmd.Withdraw


def _type_of(value: Any) -> str | None:
    return value.get("type") if isinstance(value, dict) else type(value).__name__


_CHANGE: TypeAdapter[Change] = TypeAdapter(
    Annotated[
        Annotated[cmd.SetLogging, Tag("SetLogging")]
        | Annotated[cmd.NamespaceLogging, Tag("NamespaceLogging")]
        | Annotated[cmd.Mute, Tag("Mute")]
        | Annotated[cmd.Unmute, Tag("Unmute")]
        | Annotated[cmd.ApplyProposal, Tag("ApplyProposal")]
        | Annotated[cmd.Withdraw, Tag("Withdraw")],
        Discriminator(_type_of),
    ],
    config=ConfigDict(ser_json_timedelta="float"),
)


def dump_change(command: Change) -> dict[str, Any]:
    return {"type": type(command).__name__, **_CHANGE.dump_python(command, mode="json")}


def load_change(data: Any) -> Change:
    return _CHANGE.validate_python(data)


@dataclass(frozen=True, slots=True)
class PendingChange:
    command: Change
    cluster: str | None  # resolved when the card was made: Apply changes the cluster the card named
    text: str  # as typed, for the audit trail

    def to_record(self) -> dict[str, Any]:
        return {"command": dump_change(self.command), "cluster": self.cluster, "text": self.text}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PendingChange:
        return cls(load_change(record["command"]), record.get("cluster"), record["text"])


class Confirmations:
    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def create(self, user: str, change: PendingChange, card: Card) -> Reply:
        change_id = uuid.uuid4().hex
        self.store.pending.add(change_id, user, change.to_record(), self.clock())
        return card.with_buttons(change_id)

    def peek(self, change_id: str) -> PendingChange | None:
        record = self.store.pending.get(change_id)
        return PendingChange.from_record(record) if record else None

    def claim(
        self, change_id: str, state: Literal["applied", "cancelled"]
    ) -> tuple[str, PendingChange | None]:
        """(outcome, change): "claimed" with the change once; else "expired", "unknown", or the
        state the card already had."""
        outcome, record = self.store.pending.claim(change_id, state, self.clock(), CARD_LIFETIME)
        return outcome, PendingChange.from_record(record) if outcome == "claimed" else None
