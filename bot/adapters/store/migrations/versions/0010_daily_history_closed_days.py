"""The daily flow history is summed once per closed day instead of on every grouping step: a
`cursors` row (`history_daily_open`) now says which days the daily table holds. Revision 0009 kept
every day summed as it went, so all the days it holds count as closed: the mark starts the day
after the latest one (and is absent while the history is empty, as on a new store).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

#: As `bot.adapters.store.history.DAILY_OPEN` (a revision keeps its own copy: the code moves on).
DAILY_OPEN = "history_daily_open"


def upgrade() -> None:
    op.execute(
        "INSERT INTO cursors (name, position) "
        f"SELECT '{DAILY_OPEN}', max(day) + 86400 FROM flow_history_daily HAVING count(*) > 0"
    )


def downgrade() -> None:
    # Revision 0009 expects every day summed, the open ones too: sum them before forgetting the mark.
    op.execute(
        "INSERT INTO flow_history_daily (day, cluster, direction, source, destination, dest_port, "
        "protocol, node, muted, namespace, attempts, entries, first_seen, last_seen) "
        "SELECT hour / 86400 * 86400, cluster, direction, source, destination, dest_port, protocol, "
        "node, muted, max(namespace), sum(attempts), sum(entries), min(first_seen), max(last_seen) "
        "FROM flow_history "
        f"WHERE hour >= (SELECT position FROM cursors WHERE name = '{DAILY_OPEN}') "
        "GROUP BY hour / 86400 * 86400, cluster, direction, source, destination, dest_port, protocol, "
        "node, muted"
    )
    op.execute(f"DELETE FROM cursors WHERE name = '{DAILY_OPEN}'")
