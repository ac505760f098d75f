"""Shared fixtures: a migrated store on SQLite and on the real PostgreSQL, the Pub/Sub emulator, and
the scrubbed environment of in-process CLI runs.

`make test` (tests/services.sh) starts the emulator and exports PUBSUB_EMULATOR_HOST and
NETLOG_TEST_PG_URL. Without them the tests that need them fail with a sentence saying so:
a missing service must never turn into a silently skipped suite.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from google.cloud import pubsub_v1

from bot.adapters.store import Store
from tests.environment import HOST_SETTINGS, scrub
from tests.pubsub_support import ACK_DEADLINE, PROJECT

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: Fixtures that need the Pub/Sub emulator or start the bot as a process. Tests using them are
#: marked `integration`: `make test` runs everything, `make unit` leaves these out to stay fast.
INTEGRATION_FIXTURES = frozenset({"emulator_host", "subscription", "runs"})
#: Modules whose tests start `netlog-bot run` or `ingest` as a process.
INTEGRATION_MODULES = frozenset(
    {"test_run_e2e", "test_socket_mode", "test_netlog_slack", "test_ingest_command"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module in INTEGRATION_MODULES or INTEGRATION_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.integration)


def pg_url() -> str:
    return os.environ.get("NETLOG_TEST_PG_URL", DEFAULT_PG_URL)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    base = pg_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {base}: start it or run the suite with `make test` ({error})"
        )
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs on the embedded SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'netlog.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store(db_url)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def emulator_host() -> str:
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if not host:
        pytest.fail(
            "PUBSUB_EMULATOR_HOST is not set: run the suite with `make test`, which starts the emulator"
        )
    return host


@pytest.fixture
def subscription(emulator_host: str) -> Iterator[tuple[str, str]]:
    """A fresh topic and subscription on the emulator: (topic path, subscription path)."""
    suffix = uuid.uuid4().hex[:8]
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT, f"netlog-{suffix}")
    path = subscriber.subscription_path(PROJECT, f"netlog-bot-{suffix}")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=path, topic=topic, ack_deadline_seconds=ACK_DEADLINE)
    yield topic, path
    subscriber.delete_subscription(subscription=path)
    publisher.delete_topic(topic=topic)
    subscriber.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """For in-process CLI runs: no settings from the host, the default store in tmp_path, cwd there too."""
    scrub(monkeypatch, drop=HOST_SETTINGS)
    monkeypatch.setenv("NETLOG_DB_URL", f"sqlite:///{tmp_path / 'netlog.db'}")
    monkeypatch.chdir(tmp_path)
    pipeline_log = logging.getLogger("bot.pipeline")
    level = pipeline_log.level
    yield tmp_path
    pipeline_log.setLevel(level)  # main() quiets it for the whole process
