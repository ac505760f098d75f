"""The App Home tab, published afresh when someone opens it (`app_home_opened`). Bolt acknowledges
events itself before the listener runs, so the Kubernetes and store reads here cannot make Slack
retry. A failure is logged and the tab keeps the last view it was published: never raised."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.services.home import Home

log = logging.getLogger(__name__)

EVENT = "app_home_opened"


def register(app: App, service: Home) -> None:
    app.event(EVENT)(partial(opened, service))


def opened(service: Home, event: dict[str, Any], client: WebClient) -> None:
    if event.get("tab", "home") != "home":  # the Messages tab opens with the same event
        return
    user = str(event.get("user", ""))
    try:
        client.views_publish(user_id=user, view=service.view(user))
    except Exception:
        log.exception("app home: could not publish the Home tab for %s", user)
