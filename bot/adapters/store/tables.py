"""The schema as the code expects it (revision 0011); the Alembic revisions in `migrations/` build it."""

from __future__ import annotations

import sqlalchemy as sa

from bot.adapters.store.database import UTCDateTime

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
    sa.Column("record", sa.Text, nullable=False),  # the header: everything but the flows
)

# A group's tracked flows, one row each, so a commit writes only the flows that changed.
group_flows = sa.Table(
    "group_flows",
    metadata,
    sa.Column("group_key", sa.Text, primary_key=True),
    sa.Column("flow", sa.Text, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("first_seen", sa.BigInteger, nullable=False),  # microseconds since the epoch, UTC
    sa.Column("last_seen", sa.BigInteger, nullable=False),
    sa.Column("announced", sa.Boolean, nullable=False),
)


def _history_table(name: str, bucket: str) -> sa.Table:
    """A flow-history table: one row per `bucket` (seconds since the epoch of its start, UTC),
    flow, node and muted-or-not (see `bot.core.history`). Empty strings and port 0 stand for
    "none" so the key is the same on both databases."""
    return sa.Table(
        name,
        metadata,
        sa.Column(bucket, sa.BigInteger, primary_key=True),
        sa.Column("cluster", sa.Text, primary_key=True),
        sa.Column("direction", sa.String(16), primary_key=True),
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("destination", sa.Text, primary_key=True),
        sa.Column("dest_port", sa.Integer, primary_key=True),
        sa.Column("protocol", sa.String(16), primary_key=True),
        sa.Column("node", sa.Text, primary_key=True),
        sa.Column("muted", sa.Boolean, primary_key=True),
        sa.Column("namespace", sa.Text, nullable=False),  # the policed namespace
        sa.Column("attempts", sa.BigInteger, nullable=False),
        sa.Column("entries", sa.BigInteger, nullable=False),
        sa.Column("first_seen", sa.BigInteger, nullable=False),  # microseconds since the epoch, UTC
        sa.Column("last_seen", sa.BigInteger, nullable=False),
        # `ns=` over a window: the namespace's rows without reading every flow of those buckets.
        sa.Index(f"ix_{name}_namespace_{bucket}", "namespace", bucket),
    )


# The flow history per hour, kept for `history.retention`, independently of the raw events.
flow_history = _history_table("flow_history", "hour")
# The same rows summed per UTC day: a window's whole days are read here, its edge hours from
# `flow_history` (a week is ~1/24th of the rows to group). Written with the hours, in the same
# transaction; a day is purged once all its hours are.
flow_history_daily = _history_table("flow_history_daily", "day")


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


# The digests queued, one per channel and period (seconds since the epoch, UTC): written with the
# digest's outbox row, so a period is sent once per channel whatever restarts or replicas do.
digests = sa.Table(
    "digests",
    metadata,
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("period_start", sa.BigInteger, primary_key=True),
    sa.Column("period_end", sa.BigInteger, nullable=False),
    sa.Column("queued_at", UTCDateTime, nullable=False),
    sa.Column("late", sa.Boolean, nullable=False),
)


# Nodes seen at GKE's 500 lines/s cap, per hour (seconds since the epoch) and the most lines seen
# in one second that hour; written with the flow history, kept as long.
node_caps = sa.Table(
    "node_caps",
    metadata,
    sa.Column("hour", sa.BigInteger, primary_key=True),
    sa.Column("cluster", sa.Text, primary_key=True),
    sa.Column("node", sa.Text, primary_key=True),
    sa.Column("peak", sa.Integer, nullable=False),
)
