"""Schema migrations with Alembic: `versions/` takes an empty database, or one at any earlier
revision, to the schema `tables.py` describes. Append a revision; never edit a released one.

The script directory ships inside the package and is driven from code (no alembic.ini): every start
upgrades in one transaction under the migration lock, `netlog-bot db upgrade` does the same on
demand, and `netlog-bot db upgrade --sql` prints the DDL for DBAs who apply schema changes themselves.

Databases made before Alembic (releases up to schema 6) carry a `schema_version` table instead of
`alembic_version`: they are stamped at the revision of the same number (0001 … 0006), which built
exactly what that version built, before upgrading.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot.adapters.store.database import Database, Lock

SCRIPTS = Path(__file__).parent
log = logging.getLogger(__name__)


class SchemaTooNew(Exception):
    """The database was upgraded by a newer netlog-bot; `str(error)` says what to do, in a sentence."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    """The schema revision before and after an upgrade (`before` is None for an empty database)."""

    before: str | None
    after: str


def migrate(db: Database) -> Upgrade:
    """Create or upgrade the schema to the newest revision this code knows, all or nothing. Safe on
    every start: starters take turns. Raises SchemaTooNew for a revision this code does not know."""
    config = _config()
    scripts = ScriptDirectory.from_config(config)
    with _transaction(db) as conn:
        _adopt_schema_version(conn, scripts)
        before = _current(conn, scripts)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return Upgrade(before, str(scripts.get_current_head()))


def revisions(db: Database, *, refuse_newer: bool = False) -> tuple[str | None, str]:
    """(the database's schema revision, the newest this code knows), without changing anything.
    `refuse_newer`: raise `SchemaTooNew` for a revision a newer release wrote, as `migrate` does."""
    scripts = ScriptDirectory.from_config(_config())
    with db.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if refuse_newer:
        _refuse_unknown(current, scripts)
    return current, str(scripts.get_current_head())


def write_sql(url: str, out: TextIO) -> None:
    """Alembic's offline mode: the DDL from an empty database to the newest revision, in the dialect
    of `url`, written to `out`. Nothing is connected to."""
    config = _config(out)
    config.attributes["url"] = url
    command.upgrade(config, "head", sql=True)


@contextmanager
def _transaction(db: Database) -> Iterator[Connection]:
    """The migration lock and one transaction, DDL included (both databases have transactional
    DDL). On SQLite, `Database.begin` takes the write lock at once, so a second starter waits
    (busy_timeout) instead of racing; on PostgreSQL the advisory lock serialises them."""
    with db.begin(Lock.MIGRATION) as conn:
        yield conn


def _config(out: TextIO | None = None) -> Config:
    logging.getLogger("alembic.runtime.migration").addFilter(_steps_only)  # once: same filter object
    config = Config(stdout=out, output_buffer=out) if out else Config()
    config.set_main_option("script_location", str(SCRIPTS).replace("%", "%%"))
    return config


def _steps_only(record: logging.LogRecord) -> bool:
    """Alembic's "Running upgrade 0005 -> 0006, …" lines; not its "Context impl SQLiteImpl." and
    "Will assume non-transactional DDL." on every start (wrong, too: ours is one transaction)."""
    return record.getMessage().startswith("Running ")


def _current(conn: Connection, scripts: ScriptDirectory) -> str | None:
    current = MigrationContext.configure(conn).get_current_revision()
    _refuse_unknown(current, scripts)
    return current


def _refuse_unknown(revision: str | None, scripts: ScriptDirectory) -> None:
    """A revision this code does not know is a newer release's: its schema may not be ours to use."""
    if revision is not None and revision not in {script.revision for script in scripts.walk_revisions()}:
        raise SchemaTooNew(
            f"the database at NETLOG_DB_URL is at schema revision {revision}, newer than this "
            f"netlog-bot ({scripts.get_current_head()}): run the newer release, or restore a backup"
        )


def _adopt_schema_version(conn: Connection, scripts: ScriptDirectory) -> None:
    """A database from before Alembic: stamp it at the revision of its schema_version, drop that."""
    if not sa.inspect(conn).has_table("schema_version"):
        return
    version = conn.execute(sa.text("SELECT max(version) FROM schema_version")).scalar()
    if version:  # none when an interrupted first start left the table empty (SQLite)
        revision = f"{version:04d}"
        _refuse_unknown(revision, scripts)
        log.info("store: schema version %d from before Alembic is revision %s", version, revision)
        MigrationContext.configure(conn).stamp(scripts, revision)
    conn.execute(sa.text("DROP TABLE schema_version"))
