"""`/netlog` and the buttons of its cards and alerts. Thin: ack first (Slack gives 3 s), then hand
the text or the click to the `Netlog` service and send what it answers through `respond`. Anything
unexpected still gets an answer, so nobody is left staring at a command that did nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from slack_bolt import Ack, Respond

from bot.render.replies import Reply, problem
from bot.services.netlog import Netlog

log = logging.getLogger(__name__)


@contextmanager
def answering_errors(respond: Respond, what: str) -> Iterator[None]:
    try:
        yield
    except Exception:
        log.exception("/netlog: %s failed", what)
        respond(**problem("Something went wrong on my side; the bot's log has the details.").as_kwargs())


def answer(respond: Respond) -> Callable[[Reply], None]:
    """`respond` as the services call it; also later, from a background task (the rollout report)."""

    def send(reply: Reply) -> None:
        respond(**reply.as_kwargs())

    return send


def command(service: Netlog, ack: Ack, command: dict[str, Any], respond: Respond) -> None:
    ack()  # before any Kubernetes or database call: Slack retries or errors after 3 s
    with answering_errors(respond, "command"):
        reply = service.handle(command["user_id"], command.get("text", ""), command.get("channel_id"))
        respond(**reply.as_kwargs())


def apply(service: Netlog, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
    ack()
    with answering_errors(respond, "apply"):
        service.apply(body["user"]["id"], body["actions"][0]["value"], answer(respond))


def cancel(service: Netlog, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
    ack()
    with answering_errors(respond, "cancel"):
        respond(**service.cancel(body["user"]["id"], body["actions"][0]["value"]).as_kwargs())


def mute_button(service: Netlog, hours: int, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
    ack()
    with answering_errors(respond, "mute button"):
        channel = (body.get("channel") or {}).get("id", "")
        reply = service.mute_group(
            body["user"]["id"], body["actions"][0]["value"], timedelta(hours=hours), channel
        )
        respond(**reply.as_kwargs())


def flow_button(service: Netlog, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
    """ "Why denied?" on an alert's flow and "Propose a policy" under an explanation: reading the
    cluster takes seconds, so the answer follows the ack on the response_url."""
    ack()
    with answering_errors(respond, "flow button"):
        action = body["actions"][0]
        # A button carries its value; the alert's "Why denied?" menu, the option picked.
        value = action.get("value") or (action.get("selected_option") or {}).get("value", "")
        respond(**service.flow_button(body["user"]["id"], action["action_id"], value).as_kwargs())
