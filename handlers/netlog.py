"""`/netlog` and the buttons of its cards and alerts. Thin: ack first (Slack gives 3 s), then hand
the text or the click to `Operations` and send what it answers through `respond`. Anything
unexpected still gets an answer, so nobody is left staring at a command that did nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from slack_bolt import Ack, Respond

from bot.operations import Operations
from bot.render.replies import problem

log = logging.getLogger(__name__)


@contextmanager
def answering_errors(respond: Respond, what: str) -> Iterator[None]:
    try:
        yield
    except Exception:
        log.exception("/netlog: %s failed", what)
        respond(**problem("Something went wrong on my side; the bot's log has the details.").as_kwargs())


def command(ops: Operations, ack: Ack, command: dict[str, Any], respond: Respond) -> None:
    ack()  # before any Kubernetes or database call: Slack retries or errors after 3 s
    with answering_errors(respond, "command"):
        respond(**ops.handle(command["user_id"], command.get("text", "")).as_kwargs())


def apply(ops: Operations, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
    ack()
    with answering_errors(respond, "apply"):
        change_id = body["actions"][0]["value"]
        respond(**ops.apply(body["user"]["id"], change_id).as_kwargs())
        follow_up = ops.follow_up(change_id)
        if follow_up is not None:
            respond(**follow_up.as_kwargs())


def cancel(ops: Operations, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
    ack()
    with answering_errors(respond, "cancel"):
        respond(**ops.cancel(body["user"]["id"], body["actions"][0]["value"]).as_kwargs())


def mute_button(ops: Operations, hours: int, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
    ack()
    with answering_errors(respond, "mute button"):
        channel = (body.get("channel") or {}).get("id", "")
        reply = ops.mute_group(
            body["user"]["id"], body["actions"][0]["value"], timedelta(hours=hours), channel
        )
        respond(**reply.as_kwargs())
