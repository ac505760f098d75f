"""Settings: the YAML file (every section, typed), the environment, derived objects, and the errors
that stop the bot at start naming the key and the problem. Also the duration syntax they share."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from bot.core.durations import format_duration, parse_duration
from bot.core.grouping import GroupingPolicy
from bot.core.routing import Route, RoutingTable
from bot.settings import (
    DEFAULT_SLACK_API_URL,
    FileConfig,
    PubSubSection,
    Settings,
    SettingsError,
    load_file_config,
    load_settings,
    parse_file_config,
)
from tests.environment import HOST_SETTINGS, scrub

EXAMPLE_YAML = """\
slack: {default_channel: C0123, audit_channel: C0456}
grouping:
  group_by: [cluster, namespace]
  group_wait: 30s
  group_interval: 1m
  resolve_after: 15m
  repeat_interval: 4h
  max_flows_shown: 10
routes:
  - {match: {namespace: "payments*"}, channel: C0789, continue: false}
networks:
  "169.254.169.254/32": metadata-server
  "10.128.0.0/20": nodes
access: {operators: [U0001], operator_groups: [S0001]}
digest: {schedule: "0 9 * * *", timezone: UTC, channels: [C0123]}
clusters:
  prod-eu: {context: gke_proj_europe-west1_prod-eu}
retention: 7d
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's settings must not leak into these tests."""
    scrub(monkeypatch, drop=HOST_SETTINGS)


def write(tmp_path: Path, text: str, name: str = "netlog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the file ------------------------------------------------------------------------------------


def test_the_issue_example_parses_into_typed_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETLOG_CONFIG", str(write(tmp_path, EXAMPLE_YAML)))
    file = load_settings().file
    assert file.slack.default_channel == "C0123"
    assert file.slack.audit_channel == "C0456"
    g = file.grouping
    assert g.group_by == ("cluster", "namespace")
    assert (g.group_wait, g.group_interval, g.resolve_after, g.repeat_interval) == (
        timedelta(seconds=30),
        timedelta(minutes=1),
        timedelta(minutes=15),
        timedelta(hours=4),
    )
    assert g.max_flows_shown == 10
    assert len(file.routes) == 1
    route = file.routes[0]
    assert (route.match, route.channel, route.continue_) == ({"namespace": "payments*"}, "C0789", False)
    assert file.networks == {"169.254.169.254/32": "metadata-server", "10.128.0.0/20": "nodes"}
    assert file.access.operators == ("U0001",)
    assert file.access.operator_groups == ("S0001",)
    assert (file.digest.schedule, file.digest.timezone, file.digest.channels) == (
        "0 9 * * *",
        "UTC",
        ("C0123",),
    )
    assert file.clusters["prod-eu"].context == "gke_proj_europe-west1_prod-eu"
    assert file.retention == timedelta(days=7)


def test_defaults_when_no_file_is_named() -> None:
    settings = load_settings()
    assert settings.env.config_path is None
    assert settings.file == FileConfig()
    file = settings.file
    assert file.slack.default_channel == "#netlog"
    assert file.slack.audit_channel is None
    assert file.grouping.group_by == ("cluster", "namespace")
    assert file.grouping.group_wait == timedelta(seconds=30)
    assert file.grouping.resolve_after == timedelta(minutes=15)
    assert file.grouping.max_flows_shown == 10
    assert file.routes == ()
    assert file.networks == {}
    assert file.digest.schedule == "0 9 * * *"
    assert file.digest.timezone == "UTC"
    assert file.retention == timedelta(days=7)
    env = settings.env
    assert env.db_url == "sqlite:///netlog.db"
    assert env.http_port == 8080
    assert env.slack_api_url == DEFAULT_SLACK_API_URL
    assert (env.subscription, env.project, env.slack_bot_token, env.kubeconfig) == (None, None, None, None)


@pytest.mark.parametrize("text", ["", "# only comments\n", "{}\n"])
def test_an_empty_file_means_the_defaults(tmp_path: Path, text: str) -> None:
    assert load_file_config(write(tmp_path, text)) == FileConfig()


def test_route_continue_reads_as_continue_() -> None:
    file = parse_file_config(
        {"routes": [{"match": {"cluster": "prod-*"}, "channel": "#p", "continue": True}]}
    )
    assert file.routes[0].continue_ is True


def with_grouping(**values: Any) -> dict[str, Any]:
    return {"grouping": values}


# (document, the dotted key the message must name, a piece of the hint)
INVALID: list[tuple[dict[str, Any], str, str]] = [
    (with_grouping(group_wait="30 seconds"), "grouping.group_wait", "like 30s, 5m, 4h or 7d"),
    (with_grouping(group_wait=30), "grouping.group_wait", "30s, 5m, 4h or 7d"),
    (with_grouping(group_interval="1.5m"), "grouping.group_interval", "whole number"),
    (with_grouping(repeat_interval="4H"), "grouping.repeat_interval", "30s, 5m, 4h or 7d"),
    (with_grouping(group_wait="99999999999999999999d"), "grouping.group_wait", "too long"),
    (with_grouping(max_flows_shown=0), "grouping.max_flows_shown", "greater than or equal to 1"),
    (with_grouping(max_flows_shown=41), "grouping.max_flows_shown", "less than or equal to 40"),
    (with_grouping(group_wait="15m", resolve_after="15m"), "grouping", "resolve_after must be longer"),
    (with_grouping(group_wait="20m"), "grouping", "resolve_after must be longer than group_wait"),
    (with_grouping(group_by=["cluster", "team"]), "grouping.group_by", "unknown label(s) team; choose from"),
    (with_grouping(group_wiat="30s"), "grouping.group_wiat", "unknown key"),
    ({"routes": [{"match": {"nmespace": "payments*"}, "channel": "C1"}]}, "routes.0.match", "nmespace"),
    (
        {"routes": [{"match": {"cluster": "a"}, "channel": "C1"}, {"match": {"team": "x"}, "channel": "C2"}]},
        "routes.1.match",
        "choose from cluster",
    ),
    ({"routes": [{"match": {"cluster": "a"}}]}, "routes.0.channel", "Field required"),
    ({"routes": [{"match": {"cluster": "a"}, "channel": "C1", "chanel": "D"}]}, "routes.0.chanel", "unknown"),
    ({"networks": {"10.0.0.0/33": "too-long-prefix"}}, "networks", "is not an IP network like 10.0.0.0/8"),
    ({"networks": {"corp": "10.0.0.0/8"}}, "networks", "'corp' is not an IP network"),
    ({"digest": {"timezone": "Mars/Olympus"}}, "digest.timezone", "IANA time zone like UTC or Europe/Berlin"),
    ({"digest": {"timezone": "Europe"}}, "digest.timezone", "IANA time zone"),  # a tzdata directory
    ({"digest": {"schedule": "0 9 * *"}}, "digest.schedule", "cron expression with 5 fields"),
    ({"digest": {"schedule": "daily"}}, "digest.schedule", "minute hour day month weekday"),
    (
        {"digest": {"schedule": "0 25 * * *"}},
        "digest.schedule",
        "'0 25 * * *' is not a valid cron expression",
    ),
    ({"digest": {"schedule": "61 9 * * mon"}}, "digest.schedule", "higher than the maximum value (59)"),
    ({"digest": {"schedule": "0 9 * * someday"}}, "digest.schedule", "not a valid cron expression"),
    ({"pubsub": {"lease_extension": "5s"}}, "pubsub.lease_extension", "between 10s and 600s"),
    ({"pubsub": {"lease_extension": "1h"}}, "pubsub.lease_extension", "ack deadline limits"),
    ({"pubsub": {"max_outstanding": 0}}, "pubsub.max_outstanding", "greater than or equal to 1"),
    ({"retention": "a week"}, "retention", "like 30s, 5m, 4h or 7d"),
    ({"retention": "7"}, "retention", "whole number and a unit"),
    ({"slak": {"default_channel": "C1"}}, "slak", "unknown key (check the spelling"),
    ({"slack": {"default_chanel": "C1"}}, "slack.default_chanel", "unknown key"),
    ({"clusters": {"prod": {"contxt": "c"}}}, "clusters.prod.contxt", "unknown key"),
    ({"access": {"operators": "U1"}}, "access.operators", "should be a list, e.g. [a, b], not 'U1'"),
]


@pytest.mark.parametrize(
    ("document", "key", "hint"), INVALID, ids=[f"{n}-{case[1]}" for n, case in enumerate(INVALID)]
)
def test_invalid_settings_name_the_key_and_the_problem(document: dict[str, Any], key: str, hint: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_file_config(document, "netlog.yaml")
    message = str(caught.value)
    assert message.startswith(f"netlog.yaml: {key}:"), message
    assert hint in message


def test_every_problem_is_listed_one_per_line() -> None:
    with pytest.raises(SettingsError) as caught:
        parse_file_config({"retention": "x", "digest": {"timezone": "Nowhere"}}, "f.yaml")
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert {line.split(":")[1].strip() for line in lines} == {"retention", "digest.timezone"}


@pytest.mark.parametrize("document", [["slack"], "slack: x", 42])
def test_a_file_that_is_not_a_mapping_is_refused(document: object) -> None:
    with pytest.raises(SettingsError, match=r"^cfg: the file should hold a mapping of sections"):
        parse_file_config(document, "cfg")


def test_a_yaml_syntax_error_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "grouping:\n  group_wait: [30s\n")
    monkeypatch.setenv("NETLOG_CONFIG", str(path))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"NETLOG_CONFIG={path}: not valid YAML")
    assert "line" in str(caught.value)
    # The file's own lines, not PyYAML's "<unicode string>".
    assert "<unicode string>" not in str(caught.value)
    assert str(caught.value).endswith(
        "line 3, column 1: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence that starts at line 2, column 15)"
    )


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"routes": {"match": {}, "channel": "C1"}}, "routes: should be a list, e.g. [a, b], not {"),
        (
            {"grouping": {"group_by": "cluster"}},
            "grouping.group_by: should be a list, e.g. [a, b], not 'cluster'",
        ),
        (
            {"grouping": {"max_flows_shown": "lots"}},
            "grouping.max_flows_shown: should be a whole number, not 'lots'",
        ),
        ({"slack": {"default_channel": 7}}, "slack.default_channel: should be a string, not 7"),
    ],
)
def test_a_value_of_the_wrong_kind_is_named_in_yaml_words(document: dict[str, object], says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_file_config(document, "netlog.yaml")
    assert f"netlog.yaml: {says}" in str(caught.value)


def test_a_missing_file_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nowhere.yaml"
    monkeypatch.setenv("NETLOG_CONFIG", str(path))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"NETLOG_CONFIG={path}: cannot read the file (No such file or directory)"


def test_a_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("# Zürich\nretention: 7d\n".encode("latin-1"))
    with pytest.raises(SettingsError, match=r"latin1\.yaml: not UTF-8 text"):
        load_settings({"NETLOG_CONFIG": str(path)})


def test_the_file_errors_carry_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, "retention: forever\n")
    with pytest.raises(SettingsError) as caught:
        load_settings({"NETLOG_CONFIG": str(path)})
    assert str(caught.value).startswith(f"{path}: retention: ")


# --- the environment -----------------------------------------------------------------------------


def test_environment_variables_by_their_documented_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {
        "NETLOG_CONFIG": str(write(tmp_path, EXAMPLE_YAML)),
        "NETLOG_DB_URL": "postgresql+psycopg://netlog@db/netlog",
        "GOOGLE_CLOUD_PROJECT": "my-project",
        "NETLOG_SUBSCRIPTION": "netlog-bot",
        "PUBSUB_EMULATOR_HOST": "localhost:8085",
        "SLACK_BOT_TOKEN": "xoxb-bot",
        "SLACK_SIGNING_SECRET": "signing",
        "SLACK_APP_TOKEN": "xapp-app",
        "NETLOG_SLACK_API_URL": "http://127.0.0.1:9999/api/",
        "NETLOG_LOGGING_API_URL": "http://127.0.0.1:9998",
        "NETLOG_HTTP_PORT": "3000",
        "KUBECONFIG": "/tmp/kubeconfig",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    env = load_settings().env
    assert env.config_path == Path(values["NETLOG_CONFIG"])
    assert env.db_url == values["NETLOG_DB_URL"]
    assert env.project == "my-project"
    assert env.subscription == "netlog-bot"
    assert env.pubsub_emulator_host == "localhost:8085"
    assert isinstance(env.slack_bot_token, SecretStr)
    assert env.slack_bot_token.get_secret_value() == "xoxb-bot"
    assert env.slack_signing_secret is not None
    assert env.slack_signing_secret.get_secret_value() == "signing"
    assert env.slack_app_token is not None
    assert env.slack_app_token.get_secret_value() == "xapp-app"
    assert env.slack_api_url == values["NETLOG_SLACK_API_URL"]
    assert env.logging_api_url == values["NETLOG_LOGGING_API_URL"]
    assert env.http_port == 3000
    assert env.kubeconfig == "/tmp/kubeconfig"


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETLOG_DB_URL", "sqlite:///from-env.db")
    assert load_settings({"NETLOG_DB_URL": "sqlite:///override.db"}).env.db_url == "sqlite:///override.db"


@pytest.mark.parametrize(
    ("port", "hint"),
    [
        ("http", "should be a whole number, not 'http'"),
        ("0", "greater than or equal to 1"),
        ("65536", "less than or equal to 65535"),
        ("80.5", "should be a whole number"),
    ],
)
def test_an_invalid_http_port_is_named(monkeypatch: pytest.MonkeyPatch, port: str, hint: str) -> None:
    monkeypatch.setenv("NETLOG_HTTP_PORT", port)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("environment: NETLOG_HTTP_PORT: ")
    assert hint in str(caught.value)


@pytest.mark.parametrize(
    ("subscription", "project", "expected"),
    [
        ("netlog-bot", "my-project", "projects/my-project/subscriptions/netlog-bot"),
        ("projects/other/subscriptions/netlog-bot", None, "projects/other/subscriptions/netlog-bot"),
        # a full path wins over GOOGLE_CLOUD_PROJECT
        ("projects/other/subscriptions/netlog-bot", "my-project", "projects/other/subscriptions/netlog-bot"),
    ],
)
def test_subscription_path(subscription: str, project: str | None, expected: str) -> None:
    overrides = {"NETLOG_SUBSCRIPTION": subscription}
    if project:
        overrides["GOOGLE_CLOUD_PROJECT"] = project
    assert load_settings(overrides).subscription_path() == expected


@pytest.mark.parametrize(
    ("subscription", "project", "message"),
    [
        (None, "p", "NETLOG_SUBSCRIPTION is not set: name the Pub/Sub subscription"),
        ("", "p", "NETLOG_SUBSCRIPTION is not set"),
        ("netlog-bot", None, "NETLOG_SUBSCRIPTION is a short name, so GOOGLE_CLOUD_PROJECT must name"),
        ("projects/p/topics/netlog", "p", "should look like projects/P/subscriptions/S"),
        ("projects/p/subscriptions/", "p", "should look like projects/P/subscriptions/S"),
        ("projects//subscriptions/s", "p", "should look like projects/P/subscriptions/S"),
        ("projects/p/subscriptions/s/extra", "p", "should look like projects/P/subscriptions/S"),
        ("p/netlog-bot", "p", "should be a short name or projects/P/subscriptions/S"),
    ],
)
def test_subscription_path_errors(subscription: str | None, project: str, message: str) -> None:
    overrides = {"GOOGLE_CLOUD_PROJECT": project}
    if subscription is not None:
        overrides["NETLOG_SUBSCRIPTION"] = subscription
    settings = load_settings(overrides)
    with pytest.raises(SettingsError, match=message):
        settings.subscription_path()


def test_secrets_never_show_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "SLACK_BOT_TOKEN": "xoxb-very-secret-bot",
        "SLACK_SIGNING_SECRET": "very-secret-signing",
        "SLACK_APP_TOKEN": "xapp-very-secret-app",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    shown = [repr(settings), str(settings), repr(settings.env), str(settings.env)]
    shown.append(settings.env.model_dump_json())
    for text in shown:
        for value in secrets.values():
            assert value not in text
    assert "**********" in repr(settings)
    assert settings.env.slack_bot_token is not None
    assert settings.env.slack_bot_token.get_secret_value() == secrets["SLACK_BOT_TOKEN"]


# --- derived objects -----------------------------------------------------------------------------


def example_settings(tmp_path: Path) -> Settings:
    return load_settings({"NETLOG_CONFIG": str(write(tmp_path, EXAMPLE_YAML))})


def test_grouping_policy_is_derived_from_the_file(tmp_path: Path) -> None:
    policy = example_settings(tmp_path).grouping_policy
    assert policy == GroupingPolicy(
        group_by=("cluster", "namespace"),
        group_wait=timedelta(seconds=30),
        group_interval=timedelta(minutes=1),
        resolve_after=timedelta(minutes=15),
        repeat_interval=timedelta(hours=4),
        max_flows_shown=10,
    )


def test_routing_table_is_derived_from_the_file(tmp_path: Path) -> None:
    routing = example_settings(tmp_path).routing
    assert routing == RoutingTable((Route((("namespace", "payments*"),), "C0789", False),), "C0123")
    assert routing.route({"namespace": "payments-eu"})[0].channel == "C0789"
    assert routing.route({"namespace": "web"})[0].channel == "C0123"


def test_routes_keep_their_order_and_continue(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        yaml.safe_dump(
            {
                "routes": [
                    {"match": {"cluster": "prod-*", "dest_port": "53"}, "channel": "#dns", "continue": True},
                    {"match": {"cluster": "prod-*"}, "channel": "#prod"},
                ]
            }
        ),
    )
    routing = load_settings({"NETLOG_CONFIG": str(path)}).routing
    assert routing.routes == (
        Route((("cluster", "prod-*"), ("dest_port", "53")), "#dns", True),
        Route((("cluster", "prod-*"),), "#prod", False),
    )
    assert routing.default_channel == "#netlog"
    assert [m.channel for m in routing.route({"cluster": "prod-eu", "dest_port": "53"})] == ["#dns", "#prod"]


def test_networks_are_derived_from_the_file(tmp_path: Path) -> None:
    networks = example_settings(tmp_path).networks
    assert networks.name("169.254.169.254") == "metadata-server"
    assert networks.name("10.128.3.4") == "nodes"
    assert networks.name("10.129.0.1") is None
    assert networks.networks[0] == (ipaddress.ip_network("169.254.169.254/32"), "metadata-server")


def test_defaults_derive_too() -> None:
    settings = load_settings()
    assert settings.grouping_policy == GroupingPolicy()
    assert settings.routing == RoutingTable((), "#netlog")
    assert settings.networks.networks == ()


# --- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("4h", timedelta(hours=4)),
        ("7d", timedelta(days=7)),
        ("0s", timedelta(0)),
        ("90s", timedelta(seconds=90)),
        ("120m", timedelta(hours=2)),
        (" 15m ", timedelta(minutes=15)),
        ("30 s", timedelta(seconds=30)),
        ("007d", timedelta(days=7)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "30", "s", "-5m", "1.5h", "1e3s", "30S", "5min", "1w", "4h30m", "thirty s", "99999999999999999999d"],
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration: write a whole number|is too long a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(seconds=30), "30s"),
        (timedelta(seconds=90), "90s"),
        (timedelta(minutes=1), "1m"),
        (timedelta(minutes=90), "90m"),
        (timedelta(hours=4), "4h"),
        (timedelta(hours=36), "36h"),
        (timedelta(days=7), "7d"),
        (timedelta(0), "0s"),
    ],
)
def test_format_duration(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected
    assert parse_duration(expected) == value


@pytest.mark.parametrize("text", ["1s", "59s", "61s", "60s", "3600s", "86400s", "25h", "1441m", "30d"])
def test_format_duration_round_trips_to_the_shortest_form(text: str) -> None:
    formatted = format_duration(parse_duration(text))
    assert parse_duration(formatted) == parse_duration(text)
    assert len(formatted) <= len(text)


def test_the_documented_example_config_is_valid() -> None:
    """config/netlog.example.yaml is what users copy: it must load as it is."""
    example = Path(__file__).parent.parent / "config" / "netlog.example.yaml"
    config = load_file_config(example)
    assert config.slack.audit_channel == "C0456"
    assert config.clusters["prod-us"].endpoint == "203.0.113.20"
    assert config.access.permission("mute") == "everyone"
    assert config.access.permission("enable") == "operators"
    assert config.pubsub == PubSubSection(lease_extension=timedelta(seconds=20), max_outstanding=2000)
    assert config.pubsub == FileConfig().pubsub  # the example shows the defaults


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"retention": "0s"}, "retention: retention must be at least 1h"),
        ({"grouping": {"group_interval": "0s"}}, "group_interval and repeat_interval must be longer than 0s"),
    ],
)
def test_durations_that_would_misbehave_are_refused(document: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        parse_file_config(document)


@pytest.mark.parametrize(
    "schedule", ["0 9 * * 7", "0 9 * * 1-7", "30 8 * * 1-5", "0 9 * * mon-fri", "0 */6 * * *"]
)
def test_cron_weekdays_as_cron_writes_them_are_accepted(schedule: str) -> None:
    assert parse_file_config({"digest": {"schedule": schedule}}).digest.schedule == schedule


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"slack": {"default_channel": "general"}}, "'general' is not a channel: use the channel ID (C…"),
        ({"slack": {"default_channel": "general"}}, "or #general"),
        ({"slack": {"audit_channel": ""}}, "'' is not a channel"),
        ({"routes": [{"match": {}, "channel": "<!channel>"}]}, "'<!channel>' is not a channel"),
        (
            {"digest": {"channels": ["C0123", "Team Alerts"]}},
            "digest.channels.1: 'Team Alerts' is not a channel",
        ),
        ({"mutes": {"max_duration": "0s"}}, "max_duration must be at least 1d"),
        ({"mutes": {"max_duration": "12h"}}, "the alerts' Mute 24 h button would be refused"),
        ({"mutes": {"default_duration": "3d", "max_duration": "2d"}}, "no longer than max_duration"),
        ({"clusters": {"prod": {"endpoint": "203.0.113.20"}}}, "endpoint needs ca_certificate"),
        (
            {"clusters": {"prod": {"endpoint": "203.0.113.20", "ca_certificate": "not-base64!"}}},
            "ca_certificate is neither a PEM certificate nor base64 of one",
        ),
    ],
)
def test_settings_that_can_never_work_are_refused_at_start(document: dict[str, object], says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_file_config(document, "netlog.yaml")
    assert says in str(caught.value)


@pytest.mark.parametrize("channel", ["C0123ABCD", "G0123", "#netlog", "#team_payments-eu.2"])
def test_channel_ids_and_names_are_taken(channel: str) -> None:
    assert parse_file_config({"slack": {"default_channel": channel}}).slack.default_channel == channel


def test_no_operators_is_a_warning_not_a_refusal() -> None:
    config = parse_file_config({})
    warning = config.access.warning()
    assert warning is not None
    assert "every change through /netlog and every Mute button will be refused" in warning
    assert parse_file_config({"access": {"operators": ["U01"]}}).access.warning() is None
