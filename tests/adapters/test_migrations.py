"""Schema migrations (`bot.adapters.store.migrations`, Alembic), on SQLite and on PostgreSQL.

Databases "from before Alembic" are made by `tests/legacy_schema.py`, the releases' own code frozen.
Covered:

- `migrate()` creates the schema from nothing, returns its revision, and is a no-op the second time
  (same store, another store on the same URL; data survives; no DDL runs);
- the revisions build exactly the schema the releases built: tables, columns and types, keys,
  indexes, and on SQLite the very CREATE statements (AUTOINCREMENT included);
- a schema-6 database full of rows written by today's code upgrades in place: every row of every
  table is equal afterwards, `schema_version` is gone, `alembic_version` is at head, and the store
  goes on using the old rows; versions 1 and 5 upgrade too;
- an upgrade that fails half-way leaves the database as it was;
- two stores migrating one database at once both succeed;
- a database at a revision newer than the code is refused with a sentence, and `check`, `ingest`
  and `run` end with it and exit 2;
- `netlog-bot db upgrade` and `db upgrade --sql` (SQLite and PostgreSQL DDL, nothing connected to).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store import Reject, Store, migrations
from bot.adapters.store.database import Database
from bot.adapters.store.migrations import SchemaTooNew, Upgrade
from bot.adapters.store.records import encode_group
from bot.cli import main
from bot.core.audit import AuditEntry
from bot.core.outbox import AlertPost, AuditLine, ThreadReply
from bot.render.audit import audit_message
from tests import legacy_schema as legacy
from tests.adapters.legacy_codec import audit_text, group_from_record, notification_from_record
from tests.adapters.store_support import CURSOR, downgrade, group, make_event, note
from tests.fakes.slack import FakeSlack
from tests.store_queries import event_count, insert_ids

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HEAD = "0011"
TABLES = {
    "alembic_version",
    "events",
    "rejects",
    "cursors",
    "groups",
    "group_flows",
    "flow_history",
    "flow_history_daily",
    "outbox",
    "slack_messages",
    "leases",
    "mutes",
    "audit",
    "pending_changes",
    "digests",
    "node_caps",
}
TOO_NEW = (
    "the database at NETLOG_DB_URL is at schema revision 0012, newer than this netlog-bot (0011): "
    "run the newer release, or restore a backup"
)


def table_names(db: Database) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def revisions(db: Database) -> list[str]:
    with db.connect() as conn:
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the schema, as the database returns them (no type conversion)."""
    with db.connect() as conn:
        return {
            table.name: [
                tuple(row) for row in conn.execute(sa.text(f"SELECT * FROM {table.name} ORDER BY 1"))
            ]
            for table in legacy.metadata.sorted_tables
        }


def without_records(dumped: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """`dumped` without the columns revision 0007 rewrites: outbox kind and record, group record."""
    dropped = {"outbox": (4, 5), "groups": (1,)}
    return {
        table: [tuple(v for i, v in enumerate(row) if i not in dropped.get(table, ())) for row in rows]
        for table, rows in dumped.items()
    }


def shape(db: Database) -> dict[str, Any]:
    """What a schema is made of, as the database describes it; the version tables aside."""
    inspector = sa.inspect(db.engine)
    tables = sorted(table_names(db) - {"schema_version", "alembic_version"})
    described: dict[str, Any] = {
        name: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c["default"]) for c in inspector.get_columns(name)
            ],
            "primary key": inspector.get_pk_constraint(name)["constrained_columns"],
            "unique": sorted((u["name"], u["column_names"]) for u in inspector.get_unique_constraints(name)),
            "indexes": sorted(
                (i["name"], i["column_names"], i["unique"]) for i in inspector.get_indexes(name)
            ),
        }
        for name in tables
    }
    if db.is_sqlite:
        with db.connect() as conn:
            query = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE '%_version%' ORDER BY name"
            described["sqlite_master"] = [tuple(row) for row in conn.execute(sa.text(query))]
    return described


@contextmanager
def database(url: str) -> Iterator[Database]:
    db = Database(url)
    try:
        yield db
    finally:
        db.close()


def legacy_database(db: Database, version: int) -> None:
    """A database as the release with schema `version` left it (its migrations, its version rows)."""
    with db.engine.begin() as conn:
        legacy.schema_version.create(conn)
        for applied in range(1, version + 1):
            legacy._apply(conn, applied)
            conn.execute(legacy.schema_version.insert().values(version=applied))


# -- a new database ------------------------------------------------------------------------------


def test_migrate_creates_the_schema_and_returns_its_revision(db_url: str) -> None:
    store = Store(db_url)
    try:
        assert TABLES.isdisjoint(table_names(store.db))
        assert store.migrate() == HEAD
        assert table_names(store.db) == TABLES
        assert revisions(store.db) == [HEAD]
        assert event_count(store) == 0
        assert store.grouping.cursor(CURSOR) == 0
    finally:
        store.close()


def test_migrate_is_idempotent_and_keeps_data(store: Store, db_url: str) -> None:
    store.events.add([make_event("e1")], [Reject("not_json", "not JSON", b"{")], T0)
    store.grouping.commit(CURSOR, 1, [group("g1")], [], [note("g1")], T0)

    assert store.migrate() == HEAD
    again = Store(db_url)
    try:
        assert again.migrate() == HEAD
        assert again.migrate() == HEAD
        assert insert_ids(again) == ["e1"]
        assert again.events.reject_count() == 1
        assert again.grouping.cursor(CURSOR) == 1
        assert again.grouping.load() == [group("g1")]
        assert [item.group_id for item in again.outbox.pending()] == ["g1"]
        assert revisions(again.db) == [HEAD]  # one row, not one per start
    finally:
        again.close()


def test_a_second_migrate_runs_no_ddl(store: Store) -> None:
    statements: list[str] = []

    def seen(conn: Connection, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.lstrip().split()[0].upper())

    sa.event.listen(store.db.engine, "before_cursor_execute", seen)
    try:
        assert migrations.migrate(store.db) == Upgrade(HEAD, HEAD)
    finally:
        sa.event.remove(store.db.engine, "before_cursor_execute", seen)
    assert statements
    assert set(statements) <= {"SELECT", "BEGIN", "PRAGMA"}


def test_the_revisions_build_the_schema_the_releases_built(db_url: str) -> None:
    with database(db_url) as db:
        legacy.migrate(db)
        released = shape(db)
        with db.engine.begin() as conn:
            legacy.metadata.drop_all(conn)
            legacy.schema_version.drop(conn)
        assert table_names(db) == set()
        assert migrations.migrate(db) == Upgrade(None, HEAD)
        built = shape(db)
        # Revisions 0008, 0009 and 0011 add `group_flows`, `flow_history`, `digests` and
        # `node_caps`, which no release before Alembic had.
        assert built.pop("group_flows")["primary key"] == ["group_key", "flow"]
        assert built.pop("digests")["primary key"] == ["channel", "period_start"]
        assert built.pop("node_caps")["primary key"] == ["hour", "cluster", "node"]
        assert built.pop("flow_history")["primary key"][:2] == ["hour", "cluster"]
        assert built.pop("flow_history_daily")["primary key"][:2] == ["day", "cluster"]
        if db.is_sqlite:
            built["sqlite_master"] = [
                row
                for row in built["sqlite_master"]
                if "group_flows" not in row[1]
                and "flow_history" not in row[1]
                and "digests" not in row[1]
                and "node_caps" not in row[1]
            ]
        assert built == released
    assert released["outbox"]["indexes"] == [("ix_outbox_delivered_at", ["delivered_at"], False)]
    assert ("ux_rejects_dedupe_key", ["dedupe_key"], True) in released["rejects"]["indexes"]


def test_an_upgrade_and_a_downgrade_to_nothing_retrace_each_other(db_url: str) -> None:
    """Every revision's downgrade undoes its upgrade, so a release can be rolled back by hand."""
    with database(db_url) as db:
        migrations.migrate(db)
        built = shape(db)
        downgrade(db)
        assert table_names(db) <= {"alembic_version"}
        migrations.migrate(db)
        assert shape(db) == built


# -- databases from before Alembic ------------------------------------------------------------------


def test_a_schema_6_database_upgrades_in_place_with_every_row_intact(db_url: str) -> None:
    with database(db_url) as db:
        assert legacy.migrate(db) == 6
        legacy.fill(db)
        before = dump(db)
    assert all(before.values())  # every table has rows

    store = Store(db_url)
    try:
        assert store.migrate() == HEAD
        after = dump(store.db)
        # Revision 0007 rewrites queued outbox rows and group records in the typed shapes (what they
        # hold is checked below); every other value of every row is as the release left it.
        assert without_records(after) == without_records(before)
        assert after["outbox"][:3] == before["outbox"][:3]  # delivered: never read again
        assert "schema_version" not in table_names(store.db)
        assert revisions(store.db) == [HEAD]
        the_old_rows_are_in_use(store)
    finally:
        store.close()


def the_old_rows_are_in_use(store: Store) -> None:
    """The store reads and extends what the release wrote."""
    now = datetime(2026, 4, 1, 8, 3, tzinfo=UTC)
    assert store.events.add([make_event("pay-0"), make_event("pay-7")], [], now).duplicates == 1
    assert [event.insert_id for _, event in store.events.read(6, 10)] == ["pay-7"]  # ids go on, not over
    assert store.grouping.cursor("grouping") == 6
    old_groups = [group_from_record(row["record"]) for row in legacy.ROWS["groups"]]
    assert sorted(store.grouping.load(), key=lambda g: g.key) == sorted(old_groups, key=lambda g: g.key)
    assert sorted(group.total for group in store.grouping.load()) == [1, 8]
    thread, audit = store.outbox.pending()
    assert [(thread.id, thread.kind), (audit.id, audit.kind)] == [(4, "thread_reply"), (5, "audit_line")]
    old_thread, old_audit = (row["record"] for row in legacy.ROWS["outbox"][3:])
    assert isinstance(thread.message, ThreadReply)
    assert thread.message.notification == replace(notification_from_record(old_thread), kind="update")
    assert isinstance(audit.message, AuditLine)
    entry = {name: getattr(audit.message.entry, name) for name in AuditEntry.__slots__}
    assert audit_text(entry) == old_audit["message"]["text"]  # the entry the line was about
    assert audit_message(audit.message.entry).response_type == old_audit["message"]["response_type"]
    for message in legacy.ROWS["slack_messages"]:
        assert store.outbox.message_for(str(message["group_id"])) == (message["channel"], message["ts"])
    assert [mute.reason for mute in store.mutes.active(now)] == ["deploy window", ""]
    assert store.pending.claim("c2a4e6f8", "applied", now, timedelta(hours=1))[0] == "claimed"
    assert store.leases.hold("alerts", "another", now - timedelta(minutes=1), timedelta(seconds=15)) is None
    junk = Reject("not_json", "again", b"{oops", message_id="4711")
    assert store.events.add([], [junk], now).rejected == 0  # the old dedupe key still holds


def test_a_version_5_database_keeps_its_rejects_and_dedupes_new_ones(db_url: str) -> None:
    old = Store(db_url)
    try:
        legacy_database(old.db, 5)
        with old.db.engine.begin() as conn:
            for _ in range(2):  # the same message twice, as version 5 kept redeliveries
                conn.execute(
                    sa.text(
                        "INSERT INTO rejects (received_at, message_id, code, reason, raw, raw_size) "
                        "VALUES (:at, '77', 'not_json', 'old', :raw, 1)"
                    ),
                    {"at": datetime(2026, 1, 1), "raw": b"{"},
                )
        assert migrations.migrate(old.db) == Upgrade("0005", HEAD)
        assert old.events.reject_count() == 2
        junk = Reject("not_json", "new", b"[", message_id="78")
        assert [old.events.add([], [junk], T0).rejected for _ in range(2)] == [1, 0]
        assert old.events.reject_count() == 3
    finally:
        old.close()


def test_a_version_1_database_is_migrated_to_the_latest(db_url: str) -> None:
    """A store created by the first release gains the Slack tables and keeps its outbox rows."""
    old = Store(db_url)
    try:
        legacy_database(old.db, 1)
        opened = legacy.ROWS["outbox"][0]
        assert opened["kind"] == "open"
        with old.db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO outbox (created_at, channel, group_id, kind, record) "
                    "VALUES (:at, :channel, :group_id, 'open', :record)"
                ),
                {
                    "at": datetime(2026, 1, 1),
                    "channel": opened["channel"],
                    "group_id": opened["group_id"],
                    "record": json.dumps(opened["record"]),
                },
            )
        assert migrations.migrate(old.db) == Upgrade("0001", HEAD)
        [item] = old.outbox.pending()
        assert (item.group_id, item.kind) == (opened["group_id"], "alert_post")
        assert isinstance(item.message, AlertPost)
        assert item.message.notification == notification_from_record(opened["record"])
        assert "slack_messages" in table_names(old.db)
    finally:
        old.close()


def test_an_upgrade_that_fails_half_way_leaves_the_database_as_it_was(db_url: str) -> None:
    with database(db_url) as db:
        legacy_database(db, 5)
        with db.engine.begin() as conn:  # 0006 will find its column taken
            conn.execute(sa.text("ALTER TABLE rejects ADD COLUMN dedupe_key TEXT"))
        before = shape(db), table_names(db)
        with pytest.raises(sa.exc.DatabaseError):
            migrations.migrate(db)
        assert (shape(db), table_names(db)) == before
        with db.connect() as conn:
            assert conn.execute(sa.text("SELECT max(version) FROM schema_version")).scalar() == 5


def test_two_stores_migrating_one_database_at_once_both_succeed(db_url: str) -> None:
    stores = [Store(db_url) for _ in range(4)]
    try:
        with stores[0].db.connect():  # the SQLite file exists (in WAL mode) before they race
            pass
        with ThreadPoolExecutor(len(stores)) as pool:
            upgrades = list(pool.map(lambda store: migrations.migrate(store.db), stores))
        assert sorted(upgrades, key=lambda upgrade: upgrade.before or "") == [Upgrade(None, HEAD)] + [
            Upgrade(HEAD, HEAD)
        ] * (len(stores) - 1)
        assert revisions(stores[0].db) == [HEAD]
    finally:
        for store in stores:
            store.close()


# -- a database newer than the code -----------------------------------------------------------------


def stamp_newer(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0012'"))


def test_a_database_at_an_unknown_revision_is_refused_with_a_sentence(store: Store) -> None:
    stamp_newer(store.db)
    with pytest.raises(SchemaTooNew) as refused:
        store.migrate()
    assert str(refused.value) == TOO_NEW
    assert revisions(store.db) == ["0012"]


def test_a_database_from_an_unknown_release_before_alembic_is_refused(db_url: str) -> None:
    with database(db_url) as db:
        legacy.migrate(db)
        with db.engine.begin() as conn:
            conn.execute(legacy.schema_version.insert().values(version=12))
        with pytest.raises(SchemaTooNew, match="schema revision 0012, newer than this netlog-bot"):
            migrations.migrate(db)
        assert "schema_version" in table_names(db)


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("command", ["check", "ingest", "run"])
def test_a_start_against_a_newer_schema_exits_2_with_the_sentence(
    command: str, db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with database(db_url) as db:
        migrations.migrate(db)
        stamp_newer(db)
    monkeypatch.setenv("NETLOG_DB_URL", db_url)
    monkeypatch.setenv("NETLOG_SUBSCRIPTION", "projects/p/subscriptions/never-pulled")
    # An emulator address needs no Google credentials (their absence is refused first otherwise);
    # nothing is pulled from it: the schema stops the start before.
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1")
    with FakeSlack() as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", slack.token)
        monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
        monkeypatch.setenv("NETLOG_SLACK_API_URL", slack.base_url)
        assert main([command]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1] == f"netlog-bot: {TOO_NEW}"
    assert "settings: OK" not in captured.out


# -- netlog-bot db upgrade ---------------------------------------------------------------------------


@pytest.mark.usefixtures("env")
def test_db_upgrade_says_from_which_revision_to_which(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETLOG_DB_URL", db_url)
    with database(db_url) as db:
        legacy_database(db, 4)
        where = db.engine.url.render_as_string(hide_password=True)
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == f"store {where}: upgraded from 0004 to {HEAD}\n"
    assert main(["db", "upgrade", "-v"]) == 0
    assert capsys.readouterr().out == f"store {where}: already at {HEAD}\n"


@pytest.mark.usefixtures("env")
def test_db_upgrade_of_an_empty_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert (
        capsys.readouterr().out
        == f"store sqlite:///{tmp_path}/netlog.db: upgraded from an empty database to {HEAD}\n"
    )


@pytest.mark.usefixtures("env")
def test_db_upgrade_sql_prints_the_sqlite_ddl_and_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade", "--sql"]) == 0
    ddl = capsys.readouterr().out
    assert "CREATE TABLE events (" in ddl
    assert ddl.startswith("BEGIN;")
    assert "id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT," in ddl  # ids cursors read past never return
    assert "CREATE UNIQUE INDEX ux_rejects_dedupe_key ON rejects (dedupe_key);" in ddl
    assert f"UPDATE alembic_version SET version_num='{HEAD}'" in ddl
    assert list(tmp_path.iterdir()) == []  # no database file was created


@pytest.mark.usefixtures("env")
def test_db_upgrade_sql_speaks_the_dialect_of_netlog_db_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETLOG_DB_URL", "postgresql+psycopg://netlog@db.invalid:5432/netlog")
    assert main(["db", "upgrade", "--sql"]) == 0
    ddl = capsys.readouterr().out
    assert ddl.startswith("BEGIN;")
    assert ddl.rstrip().endswith("COMMIT;")
    assert "CREATE TABLE events (\n    id BIGSERIAL NOT NULL," in ddl
    assert "raw BYTEA NOT NULL" in ddl
    assert "AUTOINCREMENT" not in ddl


def test_revision_0008_splits_group_records_into_flows_and_its_downgrade_joins_them(store: Store) -> None:
    whole = group("g1", 4, ports=(443, 8443, None))
    store.grouping.commit(CURSOR, 3, [whole, group("g2")], [], [], T0)
    downgrade(store.db, "0007")
    with store.db.connect() as conn:
        records: dict[str, str] = dict(conn.execute(sa.text('SELECT key, record FROM "groups"')).all())
    assert records == {"g1": encode_group(whole), "g2": encode_group(group("g2"))}  # the 0007 records

    assert store.migrate() == HEAD
    assert sorted(store.grouping.load(), key=lambda g: g.key) == [whole, group("g2")]
    with store.db.connect() as conn:
        flows = conn.execute(sa.text("SELECT group_key, count(*) FROM group_flows GROUP BY group_key"))
        assert dict(flows.all()) == {"g1": len(whole.flows), "g2": len(group("g2").flows)}
    assert len(whole.flows) == 3


def test_a_downgrade_below_0007_is_refused_while_messages_are_queued(store: Store) -> None:
    store.grouping.commit(CURSOR, 1, [group("g1")], [], [note("g1")], T0)
    with pytest.raises(RuntimeError, match="1 queued Slack messages and 1 open alert groups"):
        downgrade(store.db, "0006")
    assert revisions(store.db) == [HEAD]
