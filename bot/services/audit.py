"""The audit trail of `/netlog`: every change, refusal and failure is a row in the store and, when an
audit channel is set, a line there (queued in the outbox, so a Slack outage delays it, never loses it)."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from bot.adapters.store import Store
from bot.core.audit import AuditEntry
from bot.core.outbox import AuditLine


class Auditor:
    def __init__(self, store: Store, channel: str | None) -> None:
        self.store = store
        self.channel = channel

    def record(self, entry: AuditEntry) -> None:
        self.store.audit.add(asdict(entry))
        if self.channel:
            self._queue_line(self.channel, entry)

    def _queue_line(self, channel: str, entry: AuditEntry) -> None:
        # Rendered by delivery when sent, like alerts: a renderer fix applies to lines still queued.
        self.store.outbox.enqueue(AuditLine(channel, uuid.uuid4().hex, entry), entry.at)
