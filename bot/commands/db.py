"""`netlog-bot db upgrade`: the schema upgrade every start runs, on demand; with `--sql`, the DDL
from an empty database to the newest revision, for DBAs who apply schema changes themselves."""

from __future__ import annotations

from typing import TextIO

from bot.adapters.store import Store, migrations
from bot.settings import Settings


def upgrade(settings: Settings, out: TextIO, *, sql: bool = False) -> int:
    """Upgrade the database at NETLOG_DB_URL and say from which revision to which."""
    if sql:
        migrations.write_sql(settings.env.db_url, out)  # nothing is connected to
        return 0
    store = Store(settings.env.db_url)
    try:
        change = store.upgrade()
        where = store.db.engine.url.render_as_string(hide_password=True)
    finally:
        store.close()
    if change.before == change.after:
        print(f"store {where}: already at {change.after}", file=out)
    else:
        print(
            f"store {where}: upgraded from {change.before or 'an empty database'} to {change.after}", file=out
        )
    return 0
