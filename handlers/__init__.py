"""The Slack surface, readable on one screen: every command and action the bot answers."""

from __future__ import annotations

from functools import partial

from slack_bolt import App

from bot.render import ids
from bot.services.netlog import Netlog
from handlers import alerts, netlog


def register(app: App, service: Netlog) -> None:
    app.command(ids.COMMAND)(partial(netlog.command, service))
    app.action(ids.APPLY)(partial(netlog.apply, service))
    app.action(ids.CANCEL)(partial(netlog.cancel, service))
    app.action(ids.MUTE_1H)(partial(netlog.mute_button, service, 1))
    app.action(ids.MUTE_24H)(partial(netlog.mute_button, service, 24))
    app.action(ids.OPEN_LOGS)(alerts.open_logs)
    app.action(ids.EXPLAIN)(partial(netlog.flow_button, service))
    app.action(ids.PROPOSE)(partial(netlog.flow_button, service))
