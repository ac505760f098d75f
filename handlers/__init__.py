"""The Slack surface, readable on one screen: every command and action the bot answers."""

from __future__ import annotations

from slack_bolt import App

from handlers import alerts, ids


def register(app: App) -> None:
    app.action(ids.OPEN_LOGS)(alerts.open_logs)
    app.action(ids.MUTE_1H)(alerts.mute_pending)
    app.action(ids.MUTE_24H)(alerts.mute_pending)
