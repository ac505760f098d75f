"""An audit entry: who changed what through `/netlog`, with the value before and after.
Written to the store's audit log and, when an audit channel is set, posted there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

AuditResult = Literal["applied", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    user_id: str
    action: str
    result: AuditResult
    detail: str
    cluster: str | None = None
    before: str | None = None
    after: str | None = None
