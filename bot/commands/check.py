"""`netlog-bot check`: validate the settings and look at the store, one line each, and exit
non-zero when something cannot work. It creates and upgrades nothing unless `--migrate`."""

from __future__ import annotations

from typing import TextIO

from bot.adapters.store import inspect_store
from bot.settings import Settings


def check(settings: Settings, out: TextIO, *, migrate: bool = False) -> int:
    # Both before "settings: OK" is printed: they refuse with a sentence (exit 2) what no start
    # could get past, a bad subscription or a schema from a newer release.
    subscription = settings.subscription_path() if settings.env.subscription else None
    fine, store = inspect_store(settings.env.db_url, migrate=migrate)
    print(f"settings: OK (config file: {settings.env.config_path or 'none, built-in defaults'})", file=out)
    print(f"store: {store}", file=out)
    print(
        f"routes: {len(settings.file.routes)}, default channel {settings.file.slack.default_channel}",
        file=out,
    )
    if subscription:
        print(f"subscription: {subscription}", file=out)
    if warning := settings.file.access.warning():
        print(f"warning: {warning}", file=out)
    return 0 if fine else 1
