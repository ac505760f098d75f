"""Secret Manager references in the environment (`secretmanager:NAME`), read through the real
google-auth session from a fake Secret Manager over HTTP: the values replace the references, the
config's YAML can come from one, and every failure is a sentence naming the variable."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.adapters.secrets import SecretError, SecretManager, version_name
from bot.settings import SettingsError, load_settings
from tests.environment import scrub
from tests.fakes.secretmanager import FakeSecretManager

PROJECT = "acme"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSecretManager]:
    scrub(monkeypatch, drop=("GOOGLE_CLOUD_PROJECT",))
    with FakeSecretManager() as fake:
        monkeypatch.setenv("NETLOG_SECRET_MANAGER_URL", fake.api_url)
        yield fake


def test_references_are_replaced_by_the_secrets(secrets: FakeSecretManager) -> None:
    secrets.add(PROJECT, "slack-bot-token", "xoxb-old")
    secrets.add(
        PROJECT, "slack-bot-token", "xoxb-1-current\n"
    )  # as `echo ... | gcloud secrets create` stores it
    secrets.add(PROJECT, "slack-signing-secret", "s3cret")
    secrets.add("shared", "netlog-db-url", "postgresql+psycopg://netlog:pw@db/netlog")
    secrets.add("shared", "netlog-db-url", "postgresql+psycopg://netlog:pw2@db/netlog")
    settings = load_settings(
        {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "SLACK_BOT_TOKEN": "secretmanager:slack-bot-token",
            "SLACK_SIGNING_SECRET": (
                "secretmanager:projects/acme/secrets/slack-signing-secret/versions/latest"
            ),
            "NETLOG_DB_URL": "secretmanager:projects/shared/secrets/netlog-db-url/versions/1",
            "SLACK_APP_TOKEN": "xapp-plain-value",  # not a reference: left alone
        }
    )
    env = settings.env
    assert env.slack_bot_token is not None
    assert env.slack_bot_token.get_secret_value() == "xoxb-1-current"
    assert env.slack_signing_secret is not None
    assert env.slack_signing_secret.get_secret_value() == "s3cret"
    assert env.db_url == "postgresql+psycopg://netlog:pw@db/netlog"
    assert env.slack_app_token is not None
    assert env.slack_app_token.get_secret_value() == "xapp-plain-value"
    assert sorted(secrets.accessed) == [
        "projects/acme/secrets/slack-bot-token/versions/latest",
        "projects/acme/secrets/slack-signing-secret/versions/latest",
        "projects/shared/secrets/netlog-db-url/versions/1",
    ]


def test_the_config_yaml_can_come_from_a_secret(secrets: FakeSecretManager) -> None:
    secrets.add(PROJECT, "netlog-config", "slack: {default_channel: C0ALERTS}\nretention: 3d\n")
    settings = load_settings(
        {"GOOGLE_CLOUD_PROJECT": PROJECT, "NETLOG_CONFIG": "secretmanager:netlog-config"}
    )
    assert settings.file.slack.default_channel == "C0ALERTS"


def test_a_bad_config_in_a_secret_is_named_by_its_reference(secrets: FakeSecretManager) -> None:
    secrets.add(PROJECT, "netlog-config", "slack: {default_channel: general}\n")
    with pytest.raises(SettingsError, match=r"^secretmanager:netlog-config: slack\.default_channel: "):
        load_settings({"GOOGLE_CLOUD_PROJECT": PROJECT, "NETLOG_CONFIG": "secretmanager:netlog-config"})


def test_no_reference_asks_nothing(secrets: FakeSecretManager) -> None:
    load_settings({"SLACK_BOT_TOKEN": "xoxb-plain"})
    assert secrets.accessed == []


@pytest.mark.parametrize(
    ("prepare", "reference", "expected"),
    [
        (
            lambda fake: None,
            "secretmanager:slack-bot-token",
            "SLACK_BOT_TOKEN: the secret projects/acme/secrets/slack-bot-token/versions/latest does not "
            "exist (or has no such version): create it with `printf %s VALUE | gcloud secrets create "
            "slack-bot-token --data-file=-`",
        ),
        (
            lambda fake: fake.deny(PROJECT, "slack-bot-token"),
            "secretmanager:slack-bot-token",
            "SLACK_BOT_TOKEN: the bot's identity may not read projects/acme/secrets/slack-bot-token: grant "
            "it roles/secretmanager.secretAccessor on the secret (and enable the Secret Manager API)",
        ),
        (
            lambda fake: fake.add(PROJECT, "slack-bot-token", "xoxb-1", enabled=False),
            "secretmanager:projects/acme/secrets/slack-bot-token/versions/1",
            "SLACK_BOT_TOKEN: the secret version projects/acme/secrets/slack-bot-token/versions/1 is "
            "disabled: enable it or point at another version",
        ),
        (
            lambda fake: fake.add(PROJECT, "slack-bot-token", b"\xff\xfe"),
            "secretmanager:slack-bot-token",
            "SLACK_BOT_TOKEN: the secret projects/acme/secrets/slack-bot-token/versions/latest does not hold "
            "UTF-8 text",
        ),
        (
            lambda fake: None,
            "secretmanager:projects/acme/slack-bot-token",
            "SLACK_BOT_TOKEN=secretmanager:projects/acme/slack-bot-token is not a secret reference: write "
            "secretmanager:NAME or secretmanager:projects/PROJECT/secrets/NAME[/versions/N]",
        ),
    ],
)
def test_what_cannot_be_read_is_a_sentence(
    secrets: FakeSecretManager, prepare: object, reference: str, expected: str
) -> None:
    prepare(secrets)  # type: ignore[operator]
    with pytest.raises(SettingsError) as raised:
        load_settings({"GOOGLE_CLOUD_PROJECT": PROJECT, "SLACK_BOT_TOKEN": reference})
    assert str(raised.value) == expected


def test_a_short_name_needs_a_project(secrets: FakeSecretManager) -> None:
    with pytest.raises(SettingsError, match="names a secret without its project: set GOOGLE_CLOUD_PROJECT"):
        load_settings({"SLACK_BOT_TOKEN": "secretmanager:slack-bot-token"})


def test_an_unreachable_secret_manager_is_a_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    scrub(monkeypatch)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("NETLOG_SECRET_MANAGER_URL", f"http://127.0.0.1:{port}")  # nothing listens
    with pytest.raises(SettingsError, match=r"^could not reach Secret Manager to read SLACK_BOT_TOKEN \("):
        load_settings({"GOOGLE_CLOUD_PROJECT": PROJECT, "SLACK_BOT_TOKEN": "secretmanager:x"})


def test_version_names() -> None:
    assert version_name("V", "secretmanager:a", "p") == "projects/p/secrets/a/versions/latest"
    assert (
        version_name("V", "secretmanager:projects/q/secrets/a", None)
        == "projects/q/secrets/a/versions/latest"
    )
    assert version_name("V", "secretmanager:projects/q/secrets/a/versions/7", None) == (
        "projects/q/secrets/a/versions/7"
    )
    with pytest.raises(SecretError):
        version_name("V", "secretmanager:projects/q/secrets/a/versions/first", None)


def test_without_google_credentials_the_reference_says_how_to_get_some(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scrub(monkeypatch, drop=("GOOGLE_APPLICATION_CREDENTIALS",))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:1")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:1")
    with pytest.raises(SecretError, match="no Google credentials were found to read it"):
        SecretManager().read("SLACK_BOT_TOKEN", "secretmanager:x", "p")
