"""The Slack surface, readable on one screen: every command and action the bot answers."""

from __future__ import annotations

from functools import partial

from slack_bolt import App

from bot.operations import Operations
from bot.render import ids
from handlers import alerts, netlog


def register(app: App, ops: Operations) -> None:
    app.command(ids.COMMAND)(partial(netlog.command, ops))
    app.action(ids.APPLY)(partial(netlog.apply, ops))
    app.action(ids.CANCEL)(partial(netlog.cancel, ops))
    app.action(ids.MUTE_1H)(partial(netlog.mute_button, ops, 1))
    app.action(ids.MUTE_24H)(partial(netlog.mute_button, ops, 24))
    app.action(ids.OPEN_LOGS)(alerts.open_logs)
