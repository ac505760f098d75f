"""Typed settings, loaded once at start: environment variables plus the YAML file named by NETLOG_CONFIG.

This is the only module that reads the environment. Secrets are `SecretStr`, so they never show up
in logs or reprs. Anything invalid raises `SettingsError` naming the key and the problem, and the
bot stops before it touches Slack, Pub/Sub or Kubernetes.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.adapters.secrets import SecretError, SecretManager, is_reference
from bot.core.durations import format_duration, parse_duration
from bot.core.events import NetworkNames
from bot.core.grouping import GroupingPolicy
from bot.core.routing import EVENT_FIELDS, Route, RoutingTable
from bot.core.schedule import standard_weekdays

DEFAULT_SLACK_API_URL = "https://slack.com/api/"


class SettingsError(Exception):
    """Settings that cannot work; the message names the key and what to do."""


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, timedelta):
        return value
    raise ValueError(f"{value!r} is not a duration: write a whole number and a unit, like 30s, 5m, 4h or 7d")


Duration = Annotated[timedelta, BeforeValidator(_duration)]


_Names = TypeVar("_Names", tuple[str, ...], dict[str, str], dict[str, "Permission"])


def _only_known(names: _Names, known: tuple[str, ...], what: str) -> _Names:
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown {what}(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return names


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: A Slack channel ID (C…, G… for older private channels), or a `#name` the bot looks up.
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]+")
_CHANNEL_NAME = re.compile(r"#[a-z0-9][a-z0-9._-]{0,79}")


def _channel(value: str) -> str:
    if _CHANNEL_ID.fullmatch(value) or _CHANNEL_NAME.fullmatch(value):
        return value
    hint = f" or #{value.lstrip('#').lower()}" if re.fullmatch(r"#?[A-Za-z0-9._-]{1,80}", value) else ""
    raise ValueError(
        f"{value!r} is not a channel: use the channel ID (C…, at the bottom of the channel's details){hint}"
    )


Channel = Annotated[str, AfterValidator(_channel)]


class SlackSection(_Section):
    default_channel: Channel = "#netlog"
    """Where alerts go when no route matches (a channel ID like C0123 or a #name)."""
    audit_channel: Channel | None = None
    """Where changes made through /netlog are announced."""


class GroupingSection(_Section):
    group_by: tuple[str, ...] = ("cluster", "namespace")
    """Labels that split alerts into groups; `namespace` is the policed namespace."""
    group_wait: Duration = timedelta(seconds=30)
    """How long to collect denies before the first message of a group."""
    group_interval: Duration = timedelta(minutes=1)
    """The least time between two edits of a group's message."""
    resolve_after: Duration = timedelta(minutes=15)
    """Quiet time after which a group is marked resolved."""
    repeat_interval: Duration = timedelta(hours=4)
    """A group still active after this long is posted afresh."""
    max_flows_shown: int = Field(10, ge=1, le=40)
    """Flows listed in a message; the rest are counted as "+N more flows"."""
    max_flows_total: int = Field(200_000, ge=1_000, le=10_000_000)
    """Flows tracked across all groups (memory is about 0.5 KB each); past it the least recently
    seen flows are folded into their group's "other flows" count, so totals stay exact."""

    @field_validator("group_by")
    @classmethod
    def _known_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _only_known(value, EVENT_FIELDS, "label")

    @model_validator(mode="after")
    def _ordered(self) -> GroupingSection:
        if self.resolve_after <= self.group_wait:
            raise ValueError("resolve_after must be longer than group_wait")
        if self.group_interval <= timedelta(0) or self.repeat_interval <= timedelta(0):
            raise ValueError("group_interval and repeat_interval must be longer than 0s")
        return self


class RouteSection(_Section):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    match: dict[str, Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]]
    channel: Channel
    continue_: bool = Field(False, alias="continue")

    @field_validator("match")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        return _only_known(value, EVENT_FIELDS, "field")


Permission = Literal["everyone", "operators"]
COMMANDS = (
    "help",
    "status",
    "enable",
    "disable",
    "delegate",
    "ns-logging",
    "mute",
    "unmute",
    "mutes",
    "routes",
    "recent",
    "top",
    "explain",
    "propose",
    "apply-proposal",
    "proposals",
    "withdraw",
    "digest",
    "digest-now",
)
DEFAULT_PERMISSIONS: dict[str, Permission] = {
    "enable": "operators",
    "disable": "operators",
    "delegate": "operators",
    "ns-logging": "operators",
    "mute": "operators",
    "unmute": "operators",
    "digest-now": "operators",
    "apply-proposal": "operators",
    "withdraw": "operators",
}


class AccessSection(_Section):
    operators: tuple[str, ...] = ()
    """Slack user IDs allowed to change NetworkLogging, namespaces and mutes."""
    operator_groups: tuple[str, ...] = ()
    """Slack user group IDs whose members are operators."""
    permissions: dict[str, Permission] = Field(default_factory=dict)
    """Who may run each /netlog command (everyone | operators), over the defaults: changes need operators."""

    @field_validator("permissions")
    @classmethod
    def _known_commands(cls, value: dict[str, Permission]) -> dict[str, Permission]:
        return _only_known(value, COMMANDS, "command")

    def permission(self, command: str) -> Permission:
        return self.permissions.get(command, DEFAULT_PERMISSIONS.get(command, "everyone"))

    def warning(self) -> str | None:
        """What a deployment without operators should hear (it starts, but changes nothing)."""
        if self.operators or self.operator_groups:
            return None
        return (
            "no operators are configured (access.operators, access.operator_groups): every change "
            "through /netlog and every Mute button will be refused"
        )


#: The longest mute an alert's buttons set (Mute 1 h, Mute 24 h).
LONGEST_MUTE_BUTTON = timedelta(hours=24)


class MutesSection(_Section):
    default_duration: Duration = timedelta(hours=1)
    """How long a mute lasts when no `for DURATION` is given."""
    max_duration: Duration = timedelta(days=7)
    """The longest mute anyone may set."""

    @model_validator(mode="after")
    def _possible(self) -> MutesSection:
        if self.max_duration < LONGEST_MUTE_BUTTON:
            raise ValueError(
                f"max_duration must be at least {format_duration(LONGEST_MUTE_BUTTON)}: the alerts' "
                "Mute 24 h button would be refused otherwise"
            )
        if self.default_duration <= timedelta(0) or self.default_duration > self.max_duration:
            raise ValueError("default_duration must be longer than 0s and no longer than max_duration")
        return self


class DigestSection(_Section):
    """The digest: each channel in `channels` gets, at each time of `schedule` (read in
    `timezone`), the digest of the period since the schedule's previous time. No channels: no
    scheduled digest (`netlog-bot digest` and `/netlog digest` still answer)."""

    schedule: str = "0 9 * * *"
    """Cron expression (minute hour day month weekday) for the daily digest."""
    timezone: str = "UTC"
    channels: tuple[Channel, ...] = ()

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:  # the scheduler's own parser, given weekdays as cron means them
            trigger = CronTrigger.from_crontab(standard_weekdays(value), timezone="UTC")
        except ValueError as error:
            raise ValueError(f"{value!r} is not a valid cron expression: {error}") from None
        # A digest covers whole hours of the flow history: times less than an hour apart would
        # make digests of nothing. Checked over the next 200 times (every gap a schedule has).
        moment = trigger.get_next_fire_time(None, datetime.now(UTC))
        for _ in range(200):
            if moment is None:
                break
            following = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
            if following is not None and following - moment < timedelta(hours=1):
                raise ValueError(
                    f"{value!r} runs the digest more often than once an hour; a digest covers whole "
                    "hours, so give times at least an hour apart (e.g. 0 9 * * *)"
                )
            moment = following
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory
            raise ValueError(f"{value!r} is not an IANA time zone like UTC or Europe/Berlin") from None
        return value


class HistorySection(_Section):
    retention: Duration = timedelta(days=90)
    """How long the hourly flow history (`/netlog recent`, `top`) is kept; independent of the raw
    events' `retention`, so first-seen and week-on-week answers outlive the events."""

    @field_validator("retention")
    @classmethod
    def _long_enough(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=1):  # the history is hourly: shorter would keep nothing
            raise ValueError("history.retention must be at least 1h")
        return value


class PubSubSection(_Section):
    lease_extension: Duration = timedelta(seconds=20)
    """How long Pub/Sub holds a taken message for this replica before handing it to another:
    what a crashed replica's in-flight messages wait before redelivery."""
    max_outstanding: int = Field(2000, ge=1, le=100_000)
    """Messages taken but not yet stored and acked; bounds the bot's memory under a storm."""

    @field_validator("lease_extension")
    @classmethod
    def _within_pubsub_limits(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=10) <= value <= timedelta(seconds=600):  # Pub/Sub's own bounds
            raise ValueError("lease_extension must be between 10s and 600s (Pub/Sub's ack deadline limits)")
        return value


class ClusterSection(_Section):
    context: str | None = None
    """The kubeconfig context for this cluster (when not running inside it)."""
    endpoint: str | None = None
    """GKE mode, from outside any cluster: the control plane's address (uses Google credentials)."""
    ca_certificate: str | None = None
    """GKE mode: the CA certificate (PEM, or base64 as in `masterAuth.clusterCaCertificate`)."""

    @model_validator(mode="after")
    def _gke_mode(self) -> ClusterSection:
        if self.endpoint and not self.ca_certificate:
            raise ValueError(
                "endpoint needs ca_certificate (gcloud container clusters describe NAME "
                "--format='value(masterAuth.clusterCaCertificate)')"
            )
        if self.ca_certificate and not _is_pem(self.ca_certificate):
            raise ValueError(
                "ca_certificate is neither a PEM certificate nor base64 of one "
                "(masterAuth.clusterCaCertificate)"
            )
        return self


def _is_pem(text: str) -> bool:
    if "-----BEGIN CERTIFICATE-----" in text:
        return True
    try:
        decoded = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b"-----BEGIN CERTIFICATE-----" in decoded


class FileConfig(_Section):
    slack: SlackSection = SlackSection()
    grouping: GroupingSection = GroupingSection()
    routes: tuple[RouteSection, ...] = ()
    networks: dict[str, str] = Field(default_factory=dict)
    access: AccessSection = AccessSection()
    digest: DigestSection = DigestSection()
    clusters: dict[str, ClusterSection] = Field(default_factory=dict)
    mutes: MutesSection = MutesSection()
    pubsub: PubSubSection = PubSubSection()
    retention: Duration = timedelta(days=7)
    history: HistorySection = HistorySection()

    @field_validator("retention")
    @classmethod
    def _long_enough(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=1):  # shorter would purge events before anyone could look at them
            raise ValueError("retention must be at least 1h")
        return value

    @field_validator("networks")
    @classmethod
    def _cidrs(cls, value: dict[str, str]) -> dict[str, str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IP network like 10.0.0.0/8") from None
        return value


class EnvSettings(BaseSettings):
    """Environment variables, by their documented names."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    config_path: Path | None = Field(None, validation_alias="NETLOG_CONFIG")
    db_url: str = Field("sqlite:///netlog.db", validation_alias="NETLOG_DB_URL")
    project: str | None = Field(None, validation_alias="GOOGLE_CLOUD_PROJECT")
    subscription: str | None = Field(None, validation_alias="NETLOG_SUBSCRIPTION")
    pubsub_emulator_host: str | None = Field(None, validation_alias="PUBSUB_EMULATOR_HOST")
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(DEFAULT_SLACK_API_URL, validation_alias="NETLOG_SLACK_API_URL")
    logging_api_url: str | None = Field(None, validation_alias="NETLOG_LOGGING_API_URL")
    secret_manager_url: str | None = Field(None, validation_alias="NETLOG_SECRET_MANAGER_URL")
    http_port: int = Field(8080, ge=1, le=65535, validation_alias=AliasChoices("NETLOG_HTTP_PORT"))
    kubeconfig: str | None = Field(None, validation_alias="KUBECONFIG")
    kubernetes_service_host: str | None = Field(None, validation_alias="KUBERNETES_SERVICE_HOST")
    """Set by Kubernetes in every pod: the bot then talks to its own cluster without a kubeconfig."""


@dataclass(frozen=True, slots=True)
class Settings:
    env: EnvSettings
    file: FileConfig

    @property
    def grouping_policy(self) -> GroupingPolicy:
        g = self.file.grouping
        return GroupingPolicy(
            g.group_by,
            g.group_wait,
            g.group_interval,
            g.resolve_after,
            g.repeat_interval,
            g.max_flows_shown,
            max_flows_total=g.max_flows_total,
        )

    @property
    def routing(self) -> RoutingTable:
        routes = tuple(Route(tuple(r.match.items()), r.channel, r.continue_) for r in self.file.routes)
        return RoutingTable(routes, self.file.slack.default_channel)

    @property
    def networks(self) -> NetworkNames:
        return NetworkNames.from_mapping(self.file.networks)

    @property
    def logging_project(self) -> str | None:
        """The project whose Cloud Logging `recent`/`top` read: GOOGLE_CLOUD_PROJECT, or the one a
        full NETLOG_SUBSCRIPTION path names."""
        if self.env.project:
            return self.env.project
        name = self.env.subscription or ""
        parts = name.split("/")
        if len(parts) == 4 and parts[0] == "projects" and parts[1]:
            return parts[1]
        return None

    def subscription_path(self) -> str:
        """`projects/P/subscriptions/S`, from a full path or a short name plus GOOGLE_CLOUD_PROJECT."""
        name = self.env.subscription
        if not name:
            raise SettingsError(
                "NETLOG_SUBSCRIPTION is not set: name the Pub/Sub subscription fed by the log sink"
            )
        if name.startswith("projects/"):
            parts = name.split("/")
            if len(parts) != 4 or parts[2] != "subscriptions" or not parts[1] or not parts[3]:
                raise SettingsError(
                    f"NETLOG_SUBSCRIPTION {name!r} should look like projects/P/subscriptions/S"
                )
            return name
        if "/" in name:
            raise SettingsError(
                f"NETLOG_SUBSCRIPTION {name!r} should be a short name or projects/P/subscriptions/S"
            )
        if not self.env.project:
            raise SettingsError(
                "NETLOG_SUBSCRIPTION is a short name, so GOOGLE_CLOUD_PROJECT must name the project"
            )
        return f"projects/{self.env.project}/subscriptions/{name}"


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Environment (plus `overrides`, for tests and the demo) -> validated `Settings`."""
    try:
        env = EnvSettings(**dict(overrides or {}))
    except ValidationError as error:
        raise SettingsError(_describe(error, "environment: ")) from None
    env, config_text = _read_secret_references(env)
    if config_text is not None:
        reference = str(env.config_path)
        return Settings(
            env, parse_yaml_config(config_text, reference, read_from=f"NETLOG_CONFIG={reference}")
        )
    return Settings(env, load_file_config(env.config_path))


def _read_secret_references(env: EnvSettings) -> tuple[EnvSettings, str | None]:
    """Variables holding `secretmanager:` references replaced by the secrets' values (see
    `bot.adapters.secrets`), and NETLOG_CONFIG's YAML when it is one. Nothing is asked of Secret
    Manager when no variable is a reference."""

    def plain(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    references = {
        name: value
        for name, value in {
            "SLACK_BOT_TOKEN": plain(env.slack_bot_token),
            "SLACK_SIGNING_SECRET": plain(env.slack_signing_secret),
            "SLACK_APP_TOKEN": plain(env.slack_app_token),
            "NETLOG_DB_URL": env.db_url,
            "NETLOG_CONFIG": str(env.config_path) if env.config_path is not None else None,
        }.items()
        if is_reference(value)
    }
    if not references:
        return env, None
    try:
        values = SecretManager(env.secret_manager_url).resolve(references, env.project)
    except SecretError as error:
        raise SettingsError(str(error)) from None
    fields = {
        "SLACK_BOT_TOKEN": "slack_bot_token",
        "SLACK_SIGNING_SECRET": "slack_signing_secret",
        "SLACK_APP_TOKEN": "slack_app_token",
        "NETLOG_DB_URL": "db_url",
    }
    update: dict[str, object] = {
        fields[name]: SecretStr(value) if name.startswith("SLACK_") else value
        for name, value in values.items()
        if name in fields
    }
    return env.model_copy(update=update), values.get("NETLOG_CONFIG")


def load_file_config(path: Path | None) -> FileConfig:
    if path is None:
        return FileConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SettingsError(f"NETLOG_CONFIG={path}: cannot read the file ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise SettingsError(f"NETLOG_CONFIG={path}: not UTF-8 text (byte {error.start})") from None
    return parse_yaml_config(text, str(path), read_from=f"NETLOG_CONFIG={path}")


def parse_yaml_config(text: str, source: str, *, read_from: str | None = None) -> FileConfig:
    """A config file's text -> `FileConfig`. Errors name `source` (and `read_from` for bad YAML)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SettingsError(f"{read_from or source}: not valid YAML: {_yaml_problem(error)}") from None
    return parse_file_config(document, source)


def parse_file_config(document: object, source: str = "config") -> FileConfig:
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise SettingsError(
            f"{source}: the file should hold a mapping of sections (slack, grouping, routes, ...)"
        )
    try:
        return FileConfig.model_validate(document)
    except ValidationError as error:
        raise SettingsError(_describe(error, f"{source}: ")) from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """Where and what, in the file's own lines and columns (not PyYAML's `<unicode string>`)."""
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return str(error)
    mark = error.problem_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    context = ""
    if error.context and error.context_mark is not None:
        started = error.context_mark
        context = f" ({error.context} that starts at line {started.line + 1}, column {started.column + 1})"
    return f"{where}: {error.problem}{context}"


#: Pydantic's words for a value of the wrong kind, in the words of a YAML file.
_KINDS = {
    "tuple_type": "a list, e.g. [a, b]",
    "list_type": "a list, e.g. [a, b]",
    "dict_type": "a mapping of keys to values, e.g. {key: value}",
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _describe(error: ValidationError, prefix: str) -> str:
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against config/netlog.example.yaml)"
        elif problem["type"] in _KINDS:
            shown = repr(problem["input"])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            message = f"should be {_KINDS[problem['type']]}, not {shown}"
        lines.append(f"{prefix}{key}: {message}")
    return "\n".join(lines)
