"""`netlog-bot ingest`: only the subscriber into the store, and the hourly retention purge, until
SIGTERM or SIGINT. It takes no lease: every ingest process runs the purge."""

from __future__ import annotations

import logging

from bot.adapters.pubsub import SubscriptionError
from bot.app import open_store, require_google_credentials, subscriber, utcnow
from bot.jobs import retention_jobs
from bot.loops import shutdown_on_signals, wait_for_shutdown
from bot.settings import Settings

log = logging.getLogger(__name__)


def run_ingest(settings: Settings) -> int:
    subscription = settings.subscription_path()  # refused before a database file is made
    require_google_credentials(settings)
    store = open_store(settings)
    pulling = subscriber(settings, subscription, store)
    jobs = retention_jobs(store, settings.file.retention, settings.file.history.retention, utcnow)
    shutdown = shutdown_on_signals()
    pulling.start()
    jobs.start()
    try:
        wait_for_shutdown(shutdown, pulling)
    except SubscriptionError as error:
        log.error("ingest stopped: %s", error)
        return 1
    finally:
        log.info("ingest: shutting down")
        jobs.stop()
        pulling.stop()
        store.close()
    return 0
