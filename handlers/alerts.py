"""Buttons on alert messages that need no work of ours."""

from __future__ import annotations

from slack_bolt import Ack


def open_logs(ack: Ack) -> None:
    """A link button: Slack opens the URL itself but still sends the click, which must be acked."""
    ack()
