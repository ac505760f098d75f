"""`netlog-bot check` against real servers: the fake Slack, the fake Cloud Logging, the fake
Kubernetes API server, the Pub/Sub emulator and, for the IAM answers the emulator lacks, the fake
Pub/Sub IAM, each over a socket, driven through `bot.cli.main`.

Every item's OK line, each failure's line and exit 1, the deadline for servers that do not answer,
and a fresh folder with the example config and no secrets (a subprocess): the whole checklist, no
traceback, no file. Also: the scopes the check requires are the app manifests' scopes, and the
access it asks clusters about is the netlog-bot ClusterRole's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from bot.adapters.kube import ACCESS_NEEDED
from bot.adapters.slack import BOT_SCOPES
from bot.cli import main
from tests.environment import GOOGLE_AUTH, HOST_SETTINGS, scrubbed
from tests.fakes.kube import FakeKube
from tests.fakes.logging import PROJECT, FakeCloudLogging
from tests.fakes.pubsub_iam import FakePubSubIam
from tests.fakes.slack import FakeSlack
from tests.fakes.socket_mode import FakeSocketMode
from tests.logentries import log_entry

#: What /netlog explain and propose read, as check lists it.
EXPLAIN_READS = (
    "list networkpolicies; list pods; get deployments; get statefulsets; get daemonsets; "
    "get replicasets; get jobs"
)

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """\
slack: {default_channel: C0DEFAULT, audit_channel: "#audit"}
routes:
  - {match: {namespace: "payments*"}, channel: C0PAY}
digest: {channels: [C0DEFAULT]}
access: {operators: [U0001]}
clusters:
  prod: {context: prod}
"""


@dataclass
class World:
    folder: Path
    slack: FakeSlack
    logging: FakeCloudLogging
    kube: FakeKube
    monkeypatch: pytest.MonkeyPatch

    def check(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, str]]:
        """Exit code, and each line of the checklist by its item's name."""
        code = main(["check", *args])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        lines = dict(line.split(": ", 1) for line in captured.out.splitlines())
        return code, lines


@pytest.fixture
def world(
    env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with FakeSlack() as slack, FakeCloudLogging() as logging, FakeKube() as kube:
        slack.add_channel("C0DEFAULT", "netlog")
        slack.add_channel("C0AUDIT", "audit", is_private=True)
        slack.add_channel("C0PAY", "payments-oncall", member=False)
        files = tmp_path_factory.mktemp("files")  # apart from the working folder, which must stay empty
        config = files / "netlog.yaml"
        config.write_text(CONFIG, encoding="utf-8")
        kubeconfig = kube.write_kubeconfig(files / "kubeconfig", ["prod"])
        for name, value in {
            "NETLOG_CONFIG": str(config),
            "SLACK_BOT_TOKEN": slack.token,
            "NETLOG_SLACK_API_URL": slack.base_url,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "NETLOG_LOGGING_API_URL": logging.api_url,
            "KUBECONFIG": str(kubeconfig),
        }.items():
            monkeypatch.setenv(name, value)
        yield World(env, slack, logging, kube, monkeypatch)


def test_everything_in_order_says_ok(
    emulator_host: str, subscription: tuple[str, str], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # The emulator's fixtures first: `world` scrubs PUBSUB_EMULATOR_HOST from the environment.
    world.monkeypatch.setenv("NETLOG_SUBSCRIPTION", subscription[1])
    world.monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator_host)
    world.monkeypatch.setenv("SLACK_APP_TOKEN", world.slack.app_token)
    world.logging.add(log_entry(project=PROJECT))
    world.kube.networklogging["spec"]["cluster"]["deny"]["log"] = True  # type: ignore[index]
    with FakeSocketMode() as socket_mode:
        world.slack.socket_mode = socket_mode
        code, lines = world.check(capsys)
        assert socket_mode.connections == []  # a URL was handed out; nothing connected to it
    assert not any(world.slack.app_token in line for line in lines.values())
    assert code == 0, lines
    assert list(lines) == [
        "settings",
        "store",
        "slack token",
        "slack scopes",
        "slack channel C0DEFAULT (default, digest)",
        "slack channel #audit (audit)",
        "slack channel C0PAY (route)",
        "slack app token",
        "pubsub subscription",
        "cloud logging",
        "cluster prod",
    ]
    assert all(line.startswith("OK (") for line in lines.values()), lines
    assert lines["slack token"] == "OK (workspace Fake Team, bot @netlog)"
    assert lines["slack channel C0DEFAULT (default, digest)"] == "OK (#netlog; the bot is a member)"
    assert lines["slack channel #audit (audit)"] == "OK (C0AUDIT; the bot is a member)"
    assert lines["slack app token"] == (
        "OK (Slack opens Socket Mode connections for it (apps.connections.open))"
    )
    assert "not a member yet, the bot joins this public channel" in lines["slack channel C0PAY (route)"]
    assert lines["pubsub subscription"] == (
        f"OK ({subscription[1]} on the emulator at {emulator_host}, fed by {subscription[0]}; could not "
        "verify the bot may pull (the emulator has no IAM: testIamPermissions is UNIMPLEMENTED))"
    )
    assert lines["cloud logging"] == (
        f"OK (project {PROJECT} is readable; policy-action entries were logged in the last 24 h)"
    )
    assert lines["cluster prod"] == (
        "OK (NetworkLogging: deny logging on, allow logging off; the bot may get, patch networkloggings "
        f"`default`; get, list, patch namespaces; watch events; {EXPLAIN_READS}; it may apply proposals)"
    )
    [listed] = world.logging.requests
    assert listed.page_size == 1
    assert listed.filter is not None
    assert 'logName="projects/acme/logs/policy-action"' in listed.filter
    assert list(world.folder.iterdir()) == []  # nothing created, nothing changed:
    assert world.slack.calls_to("conversations.join") == []
    assert world.kube.requests_to("networkloggings", "PATCH") == []


def test_without_a_subscription_or_an_app_token_those_are_skipped_and_the_rest_stands(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = world.check(capsys)
    assert code == 0
    assert lines["pubsub subscription"] == (
        "skipped — NETLOG_SUBSCRIPTION is not set (`run` and `ingest` need it)"
    )
    assert lines["slack app token"] == (
        "skipped — SLACK_APP_TOKEN is not set (HTTP mode: Slack posts to /slack/events; Socket Mode needs it)"
    )
    assert world.slack.calls_to("apps.connections.open") == []
    assert lines["cloud logging"] == (
        f"OK (project {PROJECT} is readable; no policy-action entries in the last 24 h (is network "
        "policy logging on, in some cluster?))"
    )
    assert "nothing denied reaches the bot: /netlog enable deny" in lines["cluster prod"]


def test_a_refused_token_is_said_and_slack_asked_nothing_more(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-revoked")
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["slack token"] == (
        "FAILED — Slack refused SLACK_BOT_TOKEN at auth.test (invalid_auth): SLACK_BOT_TOKEN is not "
        "valid for this workspace: reinstall the app and update the token"
    )
    assert "slack scopes" not in lines
    assert world.slack.calls_to("conversations.info") == []


def test_a_bot_token_given_as_the_app_token_is_refused_with_what_to_set(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.monkeypatch.setenv("SLACK_APP_TOKEN", world.slack.token)  # the xoxb- token, a usual slip
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["slack app token"] == (
        "FAILED — Slack refused SLACK_APP_TOKEN at apps.connections.open (not_allowed_token_type): set it "
        "to an app-level token (xapp-...) with the connections:write scope, from the app's Basic "
        "Information page"
    )
    assert lines["slack token"].startswith("OK")
    assert world.slack.calls_to("apps.connections.open")
    assert not any(world.slack.token in line for line in lines.values())  # secrets are never shown


def test_slack_that_does_not_answer(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.slack.outage()
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["slack token"] == (
        "FAILED — could not reach Slack to check SLACK_BOT_TOKEN (HTTP 503): check the network (and "
        "HTTPS_PROXY, if this host needs one) and NETLOG_SLACK_API_URL if it is set; the token was not "
        "checked"
    )
    world.monkeypatch.setenv("SLACK_APP_TOKEN", world.slack.app_token)
    code, lines = world.check(capsys)
    assert lines["slack app token"] == (
        "FAILED — could not reach Slack to open the Socket Mode connection (HTTP 503): check the network "
        "(and HTTPS_PROXY, if this host needs one) and NETLOG_SLACK_API_URL if it is set; the token was "
        "not checked"
    )


def test_missing_scopes_are_named(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.slack.scopes -= {"files:write", "usergroups:read"}
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["slack scopes"] == (
        "FAILED — the token lacks files:write, usergroups:read: add them under OAuth & Permissions → "
        "Bot Token Scopes (config/slack-app-manifest.yaml lists them all), then reinstall the app to "
        "the workspace"
    )


def test_a_channel_the_bot_is_not_in_says_how_to_invite_it(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.slack.scopes.discard("channels:join")  # cannot join the public C0PAY by itself
    world.slack.channels["C0AUDIT"].is_member = False  # private: the bot no longer sees it
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["slack channel C0PAY (route)"] == (
        "FAILED — the bot is not a member of #payments-oncall: type /invite @netlog in #payments-oncall"
    )
    assert lines["slack channel #audit (audit)"] == (
        "FAILED — Slack shows the bot no channel #audit: check it in the config, or, if it is a private "
        "channel, type /invite @netlog in it"
    )
    assert lines["slack scopes"].startswith("FAILED — the token lacks channels:join")


def test_unknown_and_archived_channels(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    del world.slack.channels["C0PAY"]
    world.slack.channels["C0DEFAULT"].is_archived = True
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["slack channel C0PAY (route)"].startswith("FAILED — Slack shows the bot no channel C0PAY")
    assert lines["slack channel C0DEFAULT (default, digest)"] == (
        "FAILED — #netlog is archived: unarchive it or send these messages elsewhere"
    )


def test_a_missing_subscription(emulator_host: str, world: World, capsys: pytest.CaptureFixture[str]) -> None:
    missing = "projects/test-project/subscriptions/no-such-subscription"
    world.monkeypatch.setenv("NETLOG_SUBSCRIPTION", missing)
    world.monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator_host)
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["pubsub subscription"] == (
        f"FAILED — the subscription {missing} does not exist: create it with `gcloud pubsub "
        "subscriptions create SUBSCRIPTION --topic=TOPIC --ack-deadline=60` (see the README, 'Feed it "
        "real logs')"
    )


def test_cloud_logging_refused(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.logging.fail_next(403)
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["cloud logging"] == (
        f"FAILED — The bot may not read Cloud Logging in project {PROJECT}: give its Google service "
        "account roles/logging.viewer on that project."
    )


def test_access_the_cluster_refuses_is_named(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.kube.grant_only(
        ("get", "networking.gke.io", "networkloggings"),
        ("get", "", "namespaces"),
        ("list", "", "namespaces"),
    )
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["cluster prod"] == (
        "FAILED — the bot may not patch networkloggings `default`; patch namespaces; watch events; "
        f"{EXPLAIN_READS} in cluster prod: bind the netlog-bot ClusterRole (see the README, RBAC for "
        "the bot) to the identity it runs as (NetworkLogging: deny logging off, allow logging off "
        "(nothing denied reaches the bot: /netlog enable deny))"
    )
    reviews = world.kube.requests_to("selfsubjectaccessreviews", "POST")
    asked = [r.body["spec"]["resourceAttributes"] for r in reviews]
    assert {(a["verb"], a.get("group", ""), a["resource"]) for a in asked} == {
        (a.verb, a.group, a.resource) for a in ACCESS_NEEDED
    }


def test_a_cluster_without_networklogging(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.kube.crd_installed = False
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["cluster prod"].startswith(
        "FAILED — prod has no NetworkLogging object: is it a Dataplane V2"
    )


def test_an_unreachable_cluster(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.kube.stop()
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["cluster prod"] == (
        "FAILED — The API server of prod did not answer (MaxRetryError); try again in a minute."
    )
    world.kube.start()  # for the fixture's stop


def test_servers_that_do_not_answer_cost_the_timeout_not_more(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.kube.slow_next(10, count=20)
    world.logging.hold()
    started = time.monotonic()
    code, lines = world.check(capsys, "--timeout", "1")
    assert time.monotonic() - started < 3
    assert code == 1
    silent = (
        "FAILED — no answer within 1 s: check the network (and HTTPS_PROXY, if this host needs one), "
        "then run `netlog-bot check` again"
    )
    assert (lines["cluster prod"], lines["cloud logging"]) == (silent, silent)
    assert lines["slack token"].startswith("OK")
    world.logging.release()


def test_a_fresh_folder_with_the_example_config_and_no_secrets(tmp_path: Path) -> None:
    """What a newcomer sees first: every item, skips for what needs secrets, the example's clusters
    unreachable (so exit 1), no traceback, and no file created (not even ./netlog.db)."""
    folder = tmp_path / "fresh"
    folder.mkdir()
    environ = scrubbed(drop=HOST_SETTINGS + GOOGLE_AUTH) | {
        "NETLOG_CONFIG": str(ROOT / "config" / "netlog.example.yaml"),
        "HOME": str(tmp_path),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # no application-default credentials there
        "GCE_METADATA_HOST": "127.0.0.1:1",  # not on GCP: nothing answers as the metadata server
        "GCE_METADATA_IP": "127.0.0.1:1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        cwd=folder,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert list(lines) == [
        "settings",
        "store",
        "slack",
        "slack app token",
        "pubsub subscription",
        "cloud logging",
        "cluster prod-eu",
        "cluster prod-us",
    ]
    assert lines["store"].startswith("OK (sqlite:///netlog.db does not exist yet")
    assert lines["slack"].startswith("skipped — SLACK_BOT_TOKEN is not set")
    assert lines["slack app token"].startswith("skipped — SLACK_APP_TOKEN is not set (HTTP mode")
    assert lines["pubsub subscription"].startswith("skipped")
    assert lines["cloud logging"].startswith("skipped")
    assert lines["cluster prod-eu"].startswith("FAILED — I cannot reach prod-eu")
    assert "Give the bot a kubeconfig with the cluster's context" in lines["cluster prod-eu"]
    assert lines["cluster prod-us"].startswith("FAILED — I cannot reach prod-us: Google did not give")
    assert done.returncode == 1
    assert list(folder.iterdir()) == []
    assert not any(tmp_path.joinpath("gcloud").glob("*"))


# --- the lists the check compares against ---------------------------------------------------------


@pytest.mark.parametrize("manifest", ["slack-app-manifest.yaml", "slack-app-manifest.socket-mode.yaml"])
def test_the_manifests_ask_for_exactly_the_scopes_the_check_requires(manifest: str) -> None:
    document = yaml.safe_load((ROOT / "config" / manifest).read_text(encoding="utf-8"))
    assert sorted(document["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)


def test_the_cluster_role_grants_exactly_what_the_check_asks_about() -> None:
    roles = [
        document
        for path in sorted((ROOT / "deploy").rglob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if isinstance(document, dict)
        and document.get("kind") == "ClusterRole"
        and document["metadata"]["name"] == "netlog-bot"
    ]
    assert len(roles) == 1, "one netlog-bot ClusterRole under deploy/"
    granted = {
        (verb, group, resource, name)
        for rule in roles[0]["rules"]
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for name in rule.get("resourceNames") or [None]
    }
    assert granted == {(a.verb, a.group, a.resource, a.name) for a in ACCESS_NEEDED}


# --- Pub/Sub's IAM, which the emulator does not have ----------------------------------------------

SUBSCRIPTION = "projects/acme/subscriptions/netlog-bot"
TOPIC = "projects/acme/topics/netlog"


@pytest.fixture
def iam(world: World) -> Iterator[FakePubSubIam]:
    with FakePubSubIam() as fake:
        fake.add_subscription(SUBSCRIPTION, TOPIC)
        world.monkeypatch.setenv("NETLOG_SUBSCRIPTION", SUBSCRIPTION)
        world.monkeypatch.setenv("PUBSUB_EMULATOR_HOST", fake.host)
        yield fake


def test_pull_permission_confirmed_by_pubsub(
    world: World, iam: FakePubSubIam, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = world.check(capsys)
    assert code == 0
    # roles/pubsub.subscriber may pull, not describe: the topic is not shown, and that is fine
    assert lines["pubsub subscription"] == (
        f"OK ({SUBSCRIPTION} on the emulator at {iam.host}; the bot may pull from it)"
    )
    iam.granted.add("pubsub.subscriptions.get")
    assert world.check(capsys)[1]["pubsub subscription"] == (
        f"OK ({SUBSCRIPTION} on the emulator at {iam.host}, fed by {TOPIC}; the bot may pull from it)"
    )


def test_no_pull_permission(world: World, iam: FakePubSubIam, capsys: pytest.CaptureFixture[str]) -> None:
    iam.granted = {"pubsub.subscriptions.get"}  # roles/pubsub.viewer, say
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["pubsub subscription"] == (
        f"FAILED — the bot's identity may not read {SUBSCRIPTION}: grant it roles/pubsub.subscriber on "
        "the subscription"
    )


def test_pubsub_that_does_not_answer(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.monkeypatch.setenv("NETLOG_SUBSCRIPTION", SUBSCRIPTION)
    world.monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1")
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["pubsub subscription"].startswith(f"FAILED — Pub/Sub did not answer about {SUBSCRIPTION}")


def test_no_google_credentials(world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.upper().startswith(GOOGLE_AUTH)]:
        world.monkeypatch.delenv(name)
    for name, value in {
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # no application-default credentials there
        "HOME": str(tmp_path),
        "GCE_METADATA_HOST": "127.0.0.1:1",  # not on GCP: nothing answers as the metadata server
        "GCE_METADATA_IP": "127.0.0.1:1",
        "NETLOG_SUBSCRIPTION": SUBSCRIPTION,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
    }.items():
        world.monkeypatch.setenv(name, value)
    world.monkeypatch.delenv("NETLOG_LOGGING_API_URL")  # the real endpoint: credentials are needed
    code, lines = world.check(capsys)
    assert code == 1
    assert lines["pubsub subscription"].startswith(
        "FAILED — no Google credentials were found for Pub/Sub: on a workstation run `gcloud auth "
        "application-default login`"
    )
    assert lines["cloud logging"] == (
        f"FAILED — The bot has no Google credentials Cloud Logging accepts for project {PROJECT}: run it "
        "with Workload Identity or set GOOGLE_APPLICATION_CREDENTIALS to a key file."
    )
