"""`/netlog` and the buttons of its cards and alerts. Thin: ack first (Slack gives 3 s), then hand
the text or the click to `Operations` and send what it answers through `respond`."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, Respond

if TYPE_CHECKING:  # handlers.ids is imported by renderers; importing the service here would loop
    from bot.operations import Operations


def command(ops: Operations, ack: Ack, command: dict[str, Any], respond: Respond) -> None:
    ack()  # before any Kubernetes or database call: Slack retries or errors after 3 s
    reply = ops.handle(command["user_id"], command.get("text", ""))
    respond(**reply.as_kwargs())


def apply(ops: Operations, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
    ack()
    change_id = body["actions"][0]["value"]
    reply = ops.apply(body["user"]["id"], change_id)
    respond(**reply.as_kwargs())
    follow_up = ops.follow_up(change_id)
    if follow_up is not None:
        respond(**follow_up.as_kwargs())


def cancel(ops: Operations, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
    ack()
    respond(**ops.cancel(body["user"]["id"], body["actions"][0]["value"]).as_kwargs())


def mute_button(ops: Operations, hours: int, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
    ack()
    channel = (body.get("channel") or {}).get("id", "")
    reply = ops.mute_group(body["user"]["id"], body["actions"][0]["value"], timedelta(hours=hours), channel)
    respond(**reply.as_kwargs())
