"""Handlers ack first and always answer: an unexpected failure behind them still reaches the user
as an ephemeral sentence (the details go to the log), never as silence. (That a click on Apply
returns before the rollout report is tested with the report, in tests/services/test_rollout.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from handlers import netlog


class Broken:
    """Stands in for the `Netlog` service whose store just went away."""

    def handle(self, user: str, text: str, channel: str | None = None) -> Any:
        raise ConnectionError("database went away")


def test_an_unexpected_failure_is_answered(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    answers: list[dict[str, Any]] = []
    netlog.command(
        Broken(),  # type: ignore[arg-type]
        ack=lambda *a, **k: calls.append("ack"),  # type: ignore[arg-type]
        command={"user_id": "U1", "text": "status"},
        respond=lambda **kwargs: answers.append(kwargs),  # type: ignore[arg-type]
    )
    assert calls == ["ack"]
    [answer] = answers
    assert answer["response_type"] == "ephemeral"
    assert "Something went wrong on my side" in answer["text"]
    assert "database went away" in caplog.text
