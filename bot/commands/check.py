"""`netlog-bot check`: validate the settings and the store, say what is configured, and exit."""

from __future__ import annotations

from typing import TextIO

from bot.adapters.store import Store
from bot.settings import Settings


def check(settings: Settings, out: TextIO) -> int:
    # Before "settings: OK" is printed, and before a database file is created.
    subscription = settings.subscription_path() if settings.env.subscription else None
    store = Store(settings.env.db_url)
    version = store.migrate()
    try:
        print(
            f"settings: OK (config file: {settings.env.config_path or 'none, built-in defaults'})",
            file=out,
        )
        print(
            f"store: {store.db.engine.url.render_as_string(hide_password=True)} at schema revision {version}",
            file=out,
        )
        print(
            f"routes: {len(settings.file.routes)}, default channel {settings.file.slack.default_channel}",
            file=out,
        )
        if subscription:
            print(f"subscription: {subscription}", file=out)
        if warning := settings.file.access.warning():
            print(f"warning: {warning}", file=out)
    finally:
        store.close()
    return 0
