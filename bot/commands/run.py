"""`netlog-bot run`: ingest, grouping, Slack delivery, scheduled jobs and the Slack app in one
process, until SIGTERM or SIGINT."""

from __future__ import annotations

import logging

from bot.adapters.pubsub import SubscriptionError
from bot.adapters.slack import SlackCredentials
from bot.app import Runtime
from bot.loops import shutdown_on_signals, wait_for_shutdown
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def run_bot(settings: Settings) -> int:
    runtime = Runtime(settings, slack_credentials(settings))
    shutdown = shutdown_on_signals()
    runtime.start()
    try:
        wait_for_shutdown(shutdown, runtime.subscriber)
    except SubscriptionError as error:
        log.error("ingest stopped: %s", error)
        return 1
    finally:
        runtime.stop()
    return 0


def slack_credentials(settings: Settings) -> SlackCredentials:
    """The Slack secrets `run` needs: HTTP mode the signing secret, Socket Mode the app token."""
    env = settings.env
    if env.slack_bot_token is None:
        raise SettingsError("SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...) of the app")
    app_token = env.slack_app_token.get_secret_value() if env.slack_app_token else None
    secret = env.slack_signing_secret.get_secret_value() if env.slack_signing_secret else None
    if app_token is None and secret is None:
        raise SettingsError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode verifies every Slack request with it "
            "(or set SLACK_APP_TOKEN to use Socket Mode)"
        )
    return SlackCredentials(env.slack_bot_token.get_secret_value(), secret, app_token)
