"""Buttons on alert messages."""

from __future__ import annotations

from slack_bolt import Ack, Respond


def open_logs(ack: Ack) -> None:
    """A link button: Slack opens the URL itself but still sends the click, which must be acked."""
    ack()


def mute_pending(ack: Ack, respond: Respond) -> None:
    """Mute buttons carry the group to mute; mutes themselves come with the /netlog command."""
    ack()
    respond(
        response_type="ephemeral",
        replace_original=False,
        text="Muting from alerts is not enabled in this version of netlog-bot yet. "
        "The denies keep being stored and counted.",
    )
