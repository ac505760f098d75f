"""Alembic runs this script for every upgrade `bot.adapters.store.migrations` starts (there is no
alembic.ini): online on the connection it hands over, inside its transaction and migration lock,
or offline (`--sql`) for the dialect of a URL, printing the DDL instead of running it."""

from __future__ import annotations

from alembic import context

from bot.adapters.store.tables import metadata


def run_online() -> None:
    connection = context.config.attributes["connection"]
    # SQLite alters little in place: batch mode copies a table when a change needs it.
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    url = context.config.attributes["url"]
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        transactional_ddl=True,  # BEGIN … COMMIT around the script, on SQLite too: all or nothing
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
