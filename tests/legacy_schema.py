"""What netlog-bot wrote up to schema 6, frozen: the tables, the hand-written migrations and
realistic rows, as the releases before Alembic left a database. Tests of the Alembic revisions make
their "old" databases with this module, so it must never follow later changes of the store.

`migrate` and `_apply` are the last pre-Alembic `bot/adapters/store/migrations.py`, verbatim; the
tables are `bot/adapters/store/tables.py` at schema 6. `ROWS` are what today's code wrote for a
short scenario (ingest with a junk message, two alert groups posted, an update with a thread reply
that Slack rate-limited, a mute from a button and one from `/netlog`, an audit line, two pending
confirmations, a held lease); `fill` writes them, JSON columns as compact JSON like the store's `dumps`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.adapters.store.database import Database, Lock, UTCDateTime

log = logging.getLogger(__name__)

# SQLite autoincrements INTEGER keys only. Tables whose ids are cursors use AUTOINCREMENT there:
# without it SQLite reuses max(id) + 1 after a purge, handing out ids a cursor has already passed.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
metadata = sa.MetaData()

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("insert_id", sa.String(255), nullable=False, unique=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("timestamp", UTCDateTime, nullable=False, index=True),
    sa.Column("cluster", sa.Text),
    sa.Column("namespace", sa.Text),
    sa.Column("disposition", sa.String(16), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)

rejects = sa.Table(
    "rejects",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("received_at", UTCDateTime, nullable=False, index=True),
    sa.Column("message_id", sa.Text),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("raw_size", sa.Integer, nullable=False),
    # Pub/Sub redelivers a junk message like any other: keep it once. NULL (replayed files have
    # no message ids) never collides.
    sa.Column("dedupe_key", sa.Text),
    sa.Index("ux_rejects_dedupe_key", "dedupe_key", unique=True),
    sqlite_autoincrement=True,
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

groups = sa.Table(
    "groups",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("record", sa.Text, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("group_id", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("delivered_at", UTCDateTime, index=True),
    sa.Column("last_error", sa.Text),
    sqlite_autoincrement=True,
)

slack_messages = sa.Table(
    "slack_messages",
    metadata,
    sa.Column("group_id", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("ts", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False, index=True),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

mutes = sa.Table(
    "mutes",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("matchers", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("group_key", sa.Text),
    sqlite_autoincrement=True,
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("cluster", sa.Text),
    sa.Column("before", sa.Text),
    sa.Column("after", sa.Text),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)

pending_changes = sa.Table(
    "pending_changes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
)


schema_version = sa.Table("schema_version", sa.MetaData(), sa.Column("version", sa.Integer, nullable=False))

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, "create events, rejects, cursors, groups, outbox"),
    (2, "slack_messages: the Slack message each alert group owns; outbox.last_error"),
    (3, "leases: one replica at a time runs grouping and delivery"),
    (4, "mutes, audit, pending_changes: for /netlog"),
    (5, "mutes.group_key: mutes from an alert's button cover that alert only"),
    (6, "rejects.dedupe_key: a redelivered junk message is kept once"),
)


def migrate(db: Database) -> int:
    """Create or upgrade the schema; returns the version now in place. Safe to call on every start."""
    with db.begin(Lock.MIGRATION) as conn:
        schema_version.create(conn, checkfirst=True)
        current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
        for version, description in MIGRATIONS:
            if version > current:
                log.info("store: migrating schema to version %d (%s)", version, description)
                _apply(conn, version)
                conn.execute(schema_version.insert().values(version=version))
                current = version
    return current


def _without(table: sa.Table, *dropped: str) -> sa.Table:
    """`table` as an older schema had it: without the columns (and their indexes) added later."""
    columns = [c._copy() for c in table.columns if c.name not in dropped]
    return sa.Table(table.name, sa.MetaData(), *columns, sqlite_autoincrement=True)


def _apply(conn: Connection, version: int) -> None:
    if version == 1:
        for table in (
            events,
            _without(rejects, "dedupe_key"),
            cursors,
            groups,
            _without(outbox, "last_error"),
        ):
            table.create(conn, checkfirst=True)
    elif version == 2:
        slack_messages.create(conn, checkfirst=True)
        conn.execute(sa.text("ALTER TABLE outbox ADD COLUMN last_error TEXT"))
    elif version == 3:
        leases.create(conn, checkfirst=True)
    elif version == 4:
        for table in (_without(mutes, "group_key"), audit, pending_changes):
            table.create(conn, checkfirst=True)
    elif version == 5:
        conn.execute(sa.text("ALTER TABLE mutes ADD COLUMN group_key TEXT"))
    elif version == 6:
        conn.execute(sa.text("ALTER TABLE rejects ADD COLUMN dedupe_key TEXT"))
        conn.execute(sa.text("CREATE UNIQUE INDEX ux_rejects_dedupe_key ON rejects (dedupe_key)"))


AUDIT_TEXT = (
    ":white_check_mark: <@U0123> `mute` on prod: applied\n"
    "before: `-` → after: `namespace=payments for 1h`\nmuted until 09:02 UTC"
)

#: Columns the store wrote as JSON text (orjson, compact).
JSON_COLUMNS = ("record", "matchers", "command")

ROWS: dict[str, list[dict[str, Any]]] = {
    "events": [
        {
            "insert_id": "pay-0",
            "received_at": datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
            "timestamp": datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
            "cluster": "prod",
            "namespace": "payments",
            "disposition": "deny",
            "count": 2,
            "record": {
                "insert_id": "pay-0",
                "timestamp": "2026-04-01T08:00:00+00:00",
                "direction": "ingress",
                "disposition": "deny",
                "protocol": "tcp",
                "src": {
                    "kind": "pod",
                    "ip": "10.0.0.1",
                    "namespace": "checkout",
                    "pod": "web-6d9f8b7c5d-x7k2p",
                    "workload": "web",
                },
                "dest": {
                    "kind": "pod",
                    "ip": "10.0.0.2",
                    "namespace": "payments",
                    "pod": "api-7b78d7c957-zkn54",
                    "workload": "api",
                },
                "count": 2,
                "src_port": None,
                "dest_port": 443,
                "cluster": "prod",
                "location": None,
                "project": None,
                "node": "n1",
                "policies": [],
            },
        },
        {
            "insert_id": "pay-1",
            "received_at": datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
            "timestamp": datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
            "cluster": "prod",
            "namespace": "payments",
            "disposition": "deny",
            "count": 2,
            "record": {
                "insert_id": "pay-1",
                "timestamp": "2026-04-01T08:00:00+00:00",
                "direction": "ingress",
                "disposition": "deny",
                "protocol": "tcp",
                "src": {
                    "kind": "pod",
                    "ip": "10.0.0.1",
                    "namespace": "checkout",
                    "pod": "web-6d9f8b7c5d-x7k2p",
                    "workload": "web",
                },
                "dest": {
                    "kind": "pod",
                    "ip": "10.0.0.2",
                    "namespace": "payments",
                    "pod": "api-7b78d7c957-zkn54",
                    "workload": "api",
                },
                "count": 2,
                "src_port": None,
                "dest_port": 443,
                "cluster": "prod",
                "location": None,
                "project": None,
                "node": "n1",
                "policies": [],
            },
        },
        {
            "insert_id": "pay-2",
            "received_at": datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
            "timestamp": datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
            "cluster": "prod",
            "namespace": "payments",
            "disposition": "deny",
            "count": 2,
            "record": {
                "insert_id": "pay-2",
                "timestamp": "2026-04-01T08:00:00+00:00",
                "direction": "ingress",
                "disposition": "deny",
                "protocol": "tcp",
                "src": {
                    "kind": "pod",
                    "ip": "10.0.0.1",
                    "namespace": "checkout",
                    "pod": "web-6d9f8b7c5d-x7k2p",
                    "workload": "web",
                },
                "dest": {
                    "kind": "pod",
                    "ip": "10.0.0.2",
                    "namespace": "payments",
                    "pod": "api-7b78d7c957-zkn54",
                    "workload": "api",
                },
                "count": 2,
                "src_port": None,
                "dest_port": 443,
                "cluster": "prod",
                "location": None,
                "project": None,
                "node": "n1",
                "policies": [],
            },
        },
        {
            "insert_id": "web-0",
            "received_at": datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
            "timestamp": datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
            "cluster": "prod",
            "namespace": "web",
            "disposition": "deny",
            "count": 1,
            "record": {
                "insert_id": "web-0",
                "timestamp": "2026-04-01T08:00:00+00:00",
                "direction": "ingress",
                "disposition": "deny",
                "protocol": "tcp",
                "src": {
                    "kind": "pod",
                    "ip": "10.0.0.1",
                    "namespace": "checkout",
                    "pod": "web-6d9f8b7c5d-x7k2p",
                    "workload": "web",
                },
                "dest": {
                    "kind": "pod",
                    "ip": "10.0.0.2",
                    "namespace": "web",
                    "pod": "api-7b78d7c957-zkn54",
                    "workload": "api",
                },
                "count": 1,
                "src_port": None,
                "dest_port": 443,
                "cluster": "prod",
                "location": None,
                "project": None,
                "node": "n1",
                "policies": [],
            },
        },
        {
            "insert_id": "pay-new",
            "received_at": datetime(2026, 4, 1, 8, 0, 40, tzinfo=UTC),
            "timestamp": datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
            "cluster": "prod",
            "namespace": "payments",
            "disposition": "deny",
            "count": 1,
            "record": {
                "insert_id": "pay-new",
                "timestamp": "2026-04-01T08:00:00+00:00",
                "direction": "ingress",
                "disposition": "deny",
                "protocol": "tcp",
                "src": {
                    "kind": "pod",
                    "ip": "10.0.0.1",
                    "namespace": "checkout",
                    "pod": "web-6d9f8b7c5d-x7k2p",
                    "workload": "web",
                },
                "dest": {
                    "kind": "pod",
                    "ip": "10.0.0.2",
                    "namespace": "payments",
                    "pod": "api-7b78d7c957-zkn54",
                    "workload": "api",
                },
                "count": 1,
                "src_port": None,
                "dest_port": 443,
                "cluster": "prod",
                "location": None,
                "project": None,
                "node": "n1",
                "policies": [],
            },
        },
        {
            "insert_id": "pay-other",
            "received_at": datetime(2026, 4, 1, 8, 0, 41, tzinfo=UTC),
            "timestamp": datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
            "cluster": "prod",
            "namespace": "payments",
            "disposition": "deny",
            "count": 1,
            "record": {
                "insert_id": "pay-other",
                "timestamp": "2026-04-01T08:00:00+00:00",
                "direction": "ingress",
                "disposition": "deny",
                "protocol": "tcp",
                "src": {
                    "kind": "pod",
                    "ip": "10.0.0.1",
                    "namespace": "batch",
                    "pod": "job-1",
                    "workload": "job-1",
                },
                "dest": {
                    "kind": "pod",
                    "ip": "10.0.0.2",
                    "namespace": "payments",
                    "pod": "api-7b78d7c957-zkn54",
                    "workload": "api",
                },
                "count": 1,
                "src_port": None,
                "dest_port": 443,
                "cluster": "prod",
                "location": None,
                "project": None,
                "node": "n1",
                "policies": [],
            },
        },
    ],
    "rejects": [
        {
            "received_at": datetime(2026, 4, 1, 8, 0, 1, tzinfo=UTC),
            "message_id": "4711",
            "code": "not_json",
            "reason": (
                "the message is not JSON "
                "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"
            ),
            "raw": b"{oops",
            "raw_size": 5,
            "dedupe_key": "message:4711",
        },
        {
            "received_at": datetime(2026, 4, 1, 8, 0, 2, tzinfo=UTC),
            "message_id": None,
            "code": "not_json",
            "reason": "the message is not JSON",
            "raw": b"\x00\xffjunk",
            "raw_size": 6,
            "dedupe_key": None,
        },
    ],
    "cursors": [{"name": "grouping", "position": 6}],
    "groups": [
        {
            "key": '["#netlog",null,[["cluster","prod"],["namespace","web"]]]',
            "record": {
                "key": '["#netlog",null,[["cluster","prod"],["namespace","web"]]]',
                "channel": "#netlog",
                "labels": [["cluster", "prod"], ["namespace", "web"]],
                "started_at": "2026-04-01T08:00:05+00:00",
                "first_seen": "2026-04-01T08:00:00+00:00",
                "last_seen": "2026-04-01T08:00:00+00:00",
                "last_activity": "2026-04-01T08:00:05+00:00",
                "project": "",
                "total": 1,
                "other_count": 0,
                "flows": [
                    [
                        ["prod", "ingress", "checkout/web", "web/api", 443, "tcp"],
                        [1, "2026-04-01T08:00:00+00:00", "2026-04-01T08:00:00+00:00", True],
                    ]
                ],
                "nodes": ["n1"],
                "notified_at": "2026-04-01T08:00:35+00:00",
                "announced_at": "2026-04-01T08:00:35+00:00",
                "notified_total": 1,
            },
        },
        {
            "key": '["#payments",0,[["cluster","prod"],["namespace","payments"]]]',
            "record": {
                "key": '["#payments",0,[["cluster","prod"],["namespace","payments"]]]',
                "channel": "#payments",
                "labels": [["cluster", "prod"], ["namespace", "payments"]],
                "started_at": "2026-04-01T08:00:05+00:00",
                "first_seen": "2026-04-01T08:00:00+00:00",
                "last_seen": "2026-04-01T08:00:00+00:00",
                "last_activity": "2026-04-01T08:01:40+00:00",
                "project": "",
                "total": 8,
                "other_count": 0,
                "flows": [
                    [
                        ["prod", "ingress", "checkout/web", "payments/api", 443, "tcp"],
                        [7, "2026-04-01T08:00:00+00:00", "2026-04-01T08:00:00+00:00", True],
                    ],
                    [
                        ["prod", "ingress", "batch/job-1", "payments/api", 443, "tcp"],
                        [1, "2026-04-01T08:00:00+00:00", "2026-04-01T08:00:00+00:00", True],
                    ],
                ],
                "nodes": ["n1"],
                "notified_at": "2026-04-01T08:01:40+00:00",
                "announced_at": "2026-04-01T08:00:35+00:00",
                "notified_total": 8,
            },
        },
    ],
    "outbox": [
        {
            "created_at": datetime(2026, 4, 1, 8, 0, 35, tzinfo=UTC),
            "channel": "#netlog",
            "group_id": "e8709f7e54dc9d3a@2026-04-01T08:00:05+00:00",
            "kind": "open",
            "record": {
                "kind": "open",
                "group_id": "e8709f7e54dc9d3a@2026-04-01T08:00:05+00:00",
                "group_key": '["#netlog",null,[["cluster","prod"],["namespace","web"]]]',
                "channel": "#netlog",
                "labels": [["cluster", "prod"], ["namespace", "web"]],
                "at": "2026-04-01T08:00:35+00:00",
                "project": "",
                "total": 1,
                "flow_count": 1,
                "other_count": 0,
                "nodes": ["n1"],
                "first_seen": "2026-04-01T08:00:00+00:00",
                "last_seen": "2026-04-01T08:00:00+00:00",
                "top_flows": [
                    [
                        ["prod", "ingress", "checkout/web", "web/api", 443, "tcp"],
                        1,
                        "2026-04-01T08:00:00+00:00",
                        "2026-04-01T08:00:00+00:00",
                    ]
                ],
                "more_flows": 0,
                "new_flows": [],
            },
            "delivered_at": datetime(2026, 4, 1, 8, 0, 36, tzinfo=UTC),
            "last_error": None,
        },
        {
            "created_at": datetime(2026, 4, 1, 8, 0, 35, tzinfo=UTC),
            "channel": "#payments",
            "group_id": "ac897a9d84cfb61f@2026-04-01T08:00:05+00:00",
            "kind": "open",
            "record": {
                "kind": "open",
                "group_id": "ac897a9d84cfb61f@2026-04-01T08:00:05+00:00",
                "group_key": '["#payments",0,[["cluster","prod"],["namespace","payments"]]]',
                "channel": "#payments",
                "labels": [["cluster", "prod"], ["namespace", "payments"]],
                "at": "2026-04-01T08:00:35+00:00",
                "project": "",
                "total": 6,
                "flow_count": 1,
                "other_count": 0,
                "nodes": ["n1"],
                "first_seen": "2026-04-01T08:00:00+00:00",
                "last_seen": "2026-04-01T08:00:00+00:00",
                "top_flows": [
                    [
                        ["prod", "ingress", "checkout/web", "payments/api", 443, "tcp"],
                        6,
                        "2026-04-01T08:00:00+00:00",
                        "2026-04-01T08:00:00+00:00",
                    ]
                ],
                "more_flows": 0,
                "new_flows": [],
            },
            "delivered_at": datetime(2026, 4, 1, 8, 0, 36, tzinfo=UTC),
            "last_error": None,
        },
        {
            "created_at": datetime(2026, 4, 1, 8, 1, 40, tzinfo=UTC),
            "channel": "#payments",
            "group_id": "ac897a9d84cfb61f@2026-04-01T08:00:05+00:00",
            "kind": "update",
            "record": {
                "kind": "update",
                "group_id": "ac897a9d84cfb61f@2026-04-01T08:00:05+00:00",
                "group_key": '["#payments",0,[["cluster","prod"],["namespace","payments"]]]',
                "channel": "#payments",
                "labels": [["cluster", "prod"], ["namespace", "payments"]],
                "at": "2026-04-01T08:01:40+00:00",
                "project": "",
                "total": 8,
                "flow_count": 2,
                "other_count": 0,
                "nodes": ["n1"],
                "first_seen": "2026-04-01T08:00:00+00:00",
                "last_seen": "2026-04-01T08:00:00+00:00",
                "top_flows": [
                    [
                        ["prod", "ingress", "checkout/web", "payments/api", 443, "tcp"],
                        7,
                        "2026-04-01T08:00:00+00:00",
                        "2026-04-01T08:00:00+00:00",
                    ],
                    [
                        ["prod", "ingress", "batch/job-1", "payments/api", 443, "tcp"],
                        1,
                        "2026-04-01T08:00:00+00:00",
                        "2026-04-01T08:00:00+00:00",
                    ],
                ],
                "more_flows": 0,
                "new_flows": [
                    [
                        ["prod", "ingress", "batch/job-1", "payments/api", 443, "tcp"],
                        1,
                        "2026-04-01T08:00:00+00:00",
                        "2026-04-01T08:00:00+00:00",
                    ]
                ],
            },
            "delivered_at": datetime(2026, 4, 1, 8, 1, 41, tzinfo=UTC),
            "last_error": None,
        },
        {
            "created_at": datetime(2026, 4, 1, 8, 1, 41, tzinfo=UTC),
            "channel": "#payments",
            "group_id": "ac897a9d84cfb61f@2026-04-01T08:00:05+00:00",
            "kind": "thread",
            "record": {
                "kind": "thread",
                "group_id": "ac897a9d84cfb61f@2026-04-01T08:00:05+00:00",
                "group_key": '["#payments",0,[["cluster","prod"],["namespace","payments"]]]',
                "channel": "#payments",
                "labels": [["cluster", "prod"], ["namespace", "payments"]],
                "at": "2026-04-01T08:01:40+00:00",
                "project": "",
                "total": 8,
                "flow_count": 2,
                "other_count": 0,
                "nodes": ["n1"],
                "first_seen": "2026-04-01T08:00:00+00:00",
                "last_seen": "2026-04-01T08:00:00+00:00",
                "top_flows": [
                    [
                        ["prod", "ingress", "checkout/web", "payments/api", 443, "tcp"],
                        7,
                        "2026-04-01T08:00:00+00:00",
                        "2026-04-01T08:00:00+00:00",
                    ],
                    [
                        ["prod", "ingress", "batch/job-1", "payments/api", 443, "tcp"],
                        1,
                        "2026-04-01T08:00:00+00:00",
                        "2026-04-01T08:00:00+00:00",
                    ],
                ],
                "more_flows": 0,
                "new_flows": [
                    [
                        ["prod", "ingress", "batch/job-1", "payments/api", 443, "tcp"],
                        1,
                        "2026-04-01T08:00:00+00:00",
                        "2026-04-01T08:00:00+00:00",
                    ]
                ],
            },
            "delivered_at": None,
            "last_error": "rate_limited: retry after 30 s",
        },
        {
            "created_at": datetime(2026, 4, 1, 8, 2, tzinfo=UTC),
            "channel": "#netlog-audit",
            "group_id": "audit-5f1c0d7e9a8b4c3d2e1f0a9b8c7d6e5f",
            "kind": "audit",
            "record": {
                "kind": "audit",
                "channel": "#netlog-audit",
                "group_id": "audit-5f1c0d7e9a8b4c3d2e1f0a9b8c7d6e5f",
                "message": {
                    "text": AUDIT_TEXT,
                    "blocks": [
                        {
                            "type": "section",
                            "text": {
                                "type": "mrkdwn",
                                "text": AUDIT_TEXT,
                            },
                        }
                    ],
                    "response_type": "in_channel",
                },
            },
            "delivered_at": None,
            "last_error": None,
        },
    ],
    "slack_messages": [
        {
            "group_id": "ac897a9d84cfb61f@2026-04-01T08:00:05+00:00",
            "channel": "#payments",
            "ts": "1767254400.000101",
            "updated_at": datetime(2026, 4, 1, 8, 0, 36, tzinfo=UTC),
        },
        {
            "group_id": "e8709f7e54dc9d3a@2026-04-01T08:00:05+00:00",
            "channel": "#netlog",
            "ts": "1767254400.000100",
            "updated_at": datetime(2026, 4, 1, 8, 0, 36, tzinfo=UTC),
        },
    ],
    "leases": [
        {
            "name": "alerts",
            "holder": "netlog-bot-7c9d-xk2p:4242",
            "expires_at": datetime(2026, 4, 1, 8, 2, 25, tzinfo=UTC),
        }
    ],
    "mutes": [
        {
            "matchers": [["namespace", "payments"]],
            "created_at": datetime(2026, 4, 1, 8, 2, tzinfo=UTC),
            "expires_at": datetime(2026, 4, 1, 9, 2, tzinfo=UTC),
            "created_by": "U0123",
            "reason": "deploy window",
            "group_key": None,
        },
        {
            "matchers": [["cluster", "prod"], ["namespace", "payments"]],
            "created_at": datetime(2026, 4, 1, 8, 2, 10, tzinfo=UTC),
            "expires_at": datetime(2026, 4, 1, 12, 2, 10, tzinfo=UTC),
            "created_by": "U0456",
            "reason": "",
            "group_key": '["#netlog",null,[["cluster","prod"],["namespace","web"]]]',
        },
    ],
    "audit": [
        {
            "at": datetime(2026, 4, 1, 8, 2, tzinfo=UTC),
            "user_id": "U0123",
            "action": "mute",
            "cluster": "prod",
            "before": None,
            "after": "namespace=payments for 1h",
            "result": "applied",
            "detail": "muted until 09:02 UTC",
        }
    ],
    "pending_changes": [
        {
            "id": "c2a4e6f8",
            "user_id": "U0123",
            "created_at": datetime(2026, 4, 1, 8, 1, 50, tzinfo=UTC),
            "command": {
                "type": "Mute",
                "matchers": [["namespace", "payments"]],
                "duration": 3600.0,
                "reason": "deploy window",
            },
            "state": "pending",
        },
        {
            "id": "d3b5f7a9",
            "user_id": "U0456",
            "created_at": datetime(2026, 4, 1, 8, 1, 55, tzinfo=UTC),
            "command": {
                "type": "SetLogging",
                "action": "enable",
                "kind": "deny",
                "delegate": False,
                "cluster": "prod",
            },
            "state": "pending",
        },
    ],
}


def fill(db: Database) -> None:
    """Write `ROWS` in table order; ids are the database's own, as the store let it assign them."""
    with db.begin() as conn:
        for table in metadata.sorted_tables:
            for row in ROWS[table.name]:
                values = {
                    name: orjson.dumps(value).decode() if name in JSON_COLUMNS else value
                    for name, value in row.items()
                }
                conn.execute(table.insert().values(**values))
