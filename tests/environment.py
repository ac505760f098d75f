"""One environment scrubber for every test: the host's own settings must never leak into a test
(a developer's SLACK_BOT_TOKEN or NETLOG_DB_URL would make a test pass or fail for the wrong reason)."""

from __future__ import annotations

import os

import pytest

#: The bot's settings: always removed.
BOT_SETTINGS = ("NETLOG_", "SLACK_")
#: Settings read by the client libraries, removed when a test must not see the host's.
HOST_SETTINGS = ("GOOGLE_CLOUD_PROJECT", "PUBSUB_EMULATOR_HOST", "KUBECONFIG")
#: Everything google-auth and the HTTP stack read to find credentials and proxies.
GOOGLE_AUTH = ("GOOGLE_", "GCLOUD_", "CLOUDSDK_", "GCE_", "NO_GCE_CHECK", "HTTP_PROXY", "HTTPS_PROXY")
#: The test harness's own settings (NETLOG_TEST_PG_URL from tests/services.sh): always kept, or a
#: scrub that runs before the `db_url` fixture would send it to the default PostgreSQL.
HARNESS_SETTINGS = ("NETLOG_TEST_",)


def _dropped(name: str, drop: tuple[str, ...]) -> bool:
    upper = name.upper()
    return upper.startswith(BOT_SETTINGS + drop) and not upper.startswith(HARNESS_SETTINGS)


def scrubbed(*, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """A copy of the environment for a child process, without the bot's settings and `drop`."""
    return {name: value for name, value in os.environ.items() if not _dropped(name, drop)}


def scrub(monkeypatch: pytest.MonkeyPatch, *, drop: tuple[str, ...] = ()) -> None:
    """The same, applied to this process's environment for one test."""
    for name in list(os.environ):
        if _dropped(name, drop):
            monkeypatch.delenv(name)
