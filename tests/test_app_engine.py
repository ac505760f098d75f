"""`app.yaml` as App Engine reads it: no secret in it, the probes on the bot's paths, and the bot
starting with exactly its environment (plus what App Engine sets) once the four Secret Manager
secrets exist, logging JSON as App Engine reads it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.cloud import pubsub_v1

from tests.bot_process import Bot, until
from tests.fakes.secretmanager import FakeSecretManager
from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
SECRET_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "NETLOG_DB_URL", "NETLOG_CONFIG")


def app_yaml() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "app.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_app_yaml_holds_no_secret_only_references() -> None:
    app = app_yaml()
    env = app["env_variables"]
    for name in SECRET_VARIABLES:
        assert env[name].startswith("secretmanager:"), name
    assert "includes" not in app  # no untracked secrets file beside it
    assert (app["liveness_check"]["path"], app["readiness_check"]["path"]) == ("/healthz", "/readyz")
    assert env["NETLOG_HTTP_PORT"] == "8080"


def test_the_readme_creates_every_secret_app_yaml_reads() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for reference in app_yaml()["env_variables"].values():
        if str(reference).startswith("secretmanager:"):
            name = str(reference).removeprefix("secretmanager:")
            assert f"gcloud secrets create {name} " in readme, name


@pytest.fixture
def gae_project(emulator_host: str) -> Iterator[str]:
    """A project of its own on the emulator with the subscription app.yaml names."""
    project = f"gae-{uuid.uuid4().hex[:8]}"
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(project, "netlog-denies")
    subscription = subscriber.subscription_path(project, app_yaml()["env_variables"]["NETLOG_SUBSCRIPTION"])
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)
    yield project
    subscriber.delete_subscription(subscription=subscription)
    publisher.delete_topic(topic=topic)
    subscriber.close()


@pytest.mark.integration
def test_the_shipped_app_yaml_starts_once_its_secrets_exist(tmp_path: Path, gae_project: str) -> None:
    with FakeSlack() as slack, FakeSecretManager() as secrets:
        config = (ROOT / "config" / "netlog.example.yaml").read_text(encoding="utf-8")
        for name, value in {
            "netlog-config": config,
            "netlog-db-url": f"sqlite:///{tmp_path / 'netlog.db'}\n",
            "slack-bot-token": slack.token,
            "slack-signing-secret": "signing-secret-for-tests",
        }.items():
            secrets.add(gae_project, name, value)
        bot = Bot(tmp_path, slack, "unused")
        emulator = bot.env["PUBSUB_EMULATOR_HOST"]
        ours = ("NETLOG_", "SLACK_")  # only app.yaml's, from here on
        bot.env = {name: value for name, value in bot.env.items() if not name.startswith(ours)}
        bot.env.update({name: str(value) for name, value in app_yaml()["env_variables"].items()})
        bot.env.update(
            {
                # What App Engine sets, and where the test's fakes listen.
                "GOOGLE_CLOUD_PROJECT": gae_project,
                "GAE_SERVICE": "netlog-bot",
                "PUBSUB_EMULATOR_HOST": emulator,
                "NETLOG_SECRET_MANAGER_URL": secrets.api_url,
                "NETLOG_SLACK_API_URL": slack.base_url,
                "NETLOG_HTTP_PORT": str(bot.port),
            }
        )
        try:
            bot.start()
            until(lambda: bot.get("/readyz")[0] == 200, 30, "/readyz to pass", bot)
            assert bot.stop() == 0
        finally:
            bot.kill()
    lines = [json.loads(line) for line in bot.text().splitlines()]  # App Engine reads JSON lines
    messages = [line["message"] for line in lines]
    assert any(message.startswith("run: started") for message in messages), messages
    assert sorted(secrets.accessed) == sorted(
        f"projects/{gae_project}/secrets/{name}/versions/latest"
        for name in ("netlog-config", "netlog-db-url", "slack-bot-token", "slack-signing-secret")
    )
    assert slack.token not in bot.text()
    assert (tmp_path / "netlog.db").exists()
