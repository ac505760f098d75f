"""What the store, migration and legacy-record tests share: a fully populated event, an outbox
message, an alert group, the grouping cursor's name, and `alembic downgrade`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.config import Config

from bot.adapters.store import migrations
from bot.adapters.store.database import Database
from bot.core.events import Endpoint, Policy, PolicyEvent
from bot.core.grouping import FlowKey, FlowStats, Group, GroupKey, Notification
from bot.core.outbox import AlertEdit, AlertPost, OutboxMessage

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CURSOR = "grouping"


def make_event(
    insert_id: str,
    ts: datetime = T0,
    namespace: str = "payments",
    *,
    count: int = 1,
) -> PolicyEvent:
    """An ingress deny from a frontend pod to `namespace`/api, with every optional field set."""
    return PolicyEvent(
        insert_id=insert_id,
        timestamp=ts,
        direction="ingress",
        disposition="deny",
        protocol="tcp",
        src=Endpoint(
            "pod",
            ip="10.4.0.12",
            namespace="frontend",
            pod="web-7d9f8b6c5d-x2x4z",
            workload="web",
            workload_kind="Deployment",
        ),
        dest=Endpoint(
            "pod",
            ip="10.4.1.7",
            namespace=namespace,
            pod="api-0",
            workload="api",
            workload_kind="StatefulSet",
        ),
        count=count,
        src_port=51234,
        dest_port=8443,
        cluster="prod-eu",
        location="europe-west1",
        project="acme-prod",
        node="gke-prod-eu-pool-1-abcd",
        policies=(
            Policy("NetworkPolicy", "default-deny", namespace),
            Policy("AdminNetworkPolicy", "baseline", None),
        ),
    )


def note(group_id: str, kind: str = "new", channel: str = "#netlog") -> OutboxMessage:
    """An outbox message: an "update" edits the group's alert, anything else posts it."""
    notification = Notification(
        kind="update" if kind == "update" else "open",
        group_id=group_id,
        group_key=GroupKey(channel, 0, (("namespace", "payments"),)).encode(),
        channel=channel,
        labels=(("namespace", "payments"),),
        at=T0,
        project="acme-prod",
        total=3,
        flow_count=1,
        other_count=0,
        nodes=("gke-prod-eu-pool-1-abcd",),
        first_seen=T0,
        last_seen=T0,
        top_flows=(),
        more_flows=0,
    )
    return AlertEdit(notification) if kind == "update" else AlertPost(notification)


def group(key: str, total: int = 1, ports: tuple[int | None, ...] = (443,)) -> Group:
    """An alert group with one flow per port, `total` attempts on the first."""
    flows = {
        FlowKey("prod-eu", "ingress", "frontend/web", "payments/api", port, "tcp"): FlowStats(
            total if n == 0 else 1, T0, T0 + timedelta(seconds=n), announced=n == 0
        )
        for n, port in enumerate(ports)
    }
    return Group(key, "#netlog", (("namespace", "payments"),), T0, T0, T0, T0, total=total, flows=flows)


def downgrade(db: Database, revision: str = "base") -> None:
    """`alembic downgrade REVISION`, as an operator would run it with the package's script directory."""
    config = Config()
    config.set_main_option("script_location", str(migrations.SCRIPTS))
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
