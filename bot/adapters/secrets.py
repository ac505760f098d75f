"""Secret Manager: environment variables whose value is a reference to a secret, read once at start.

Where a platform puts environment variables in a deploy file (App Engine's `app.yaml`), a secret
must not be written there. So a secret variable (and NETLOG_CONFIG) may hold a reference instead:

    SLACK_BOT_TOKEN: secretmanager:slack-bot-token          # projects/$GOOGLE_CLOUD_PROJECT/..., latest
    NETLOG_DB_URL:   secretmanager:projects/P/secrets/netlog-db-url/versions/3

and the bot reads the secret's payload at start with the same Google credentials as Pub/Sub, through
the REST API (`GET v1/{name}:access`): one request per reference, no client library for four calls.
Every failure is a sentence naming the variable and what to grant or create.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

# google.auth and requests are imported when a reference is read, not with this module: the
# settings import it for every command, and most commands (replay, demo, recent) read no secret.

PREFIX = "secretmanager:"
DEFAULT_URL = "https://secretmanager.googleapis.com"
_FULL = re.compile(r"^projects/[^/]+/secrets/[A-Za-z0-9_-]+(/versions/(latest|[0-9]+))?$")
_SHORT = re.compile(r"^[A-Za-z0-9_-]+$")
#: Secret Manager answers in well under a second; a start should not hang on it.
_TIMEOUT = 10.0


class SecretError(Exception):
    """A reference that cannot be read; `str()` says what to do."""


def is_reference(value: str | None) -> bool:
    return bool(value) and str(value).startswith(PREFIX)


def version_name(variable: str, reference: str, project: str | None) -> str:
    """`projects/P/secrets/S/versions/V` for a reference (the version defaults to `latest`)."""
    name = reference[len(PREFIX) :].strip()
    if _SHORT.match(name):
        if not project:
            raise SecretError(
                f"{variable}={reference} names a secret without its project: set GOOGLE_CLOUD_PROJECT "
                f"or write {PREFIX}projects/PROJECT/secrets/{name}"
            )
        name = f"projects/{project}/secrets/{name}"
    if not _FULL.match(name):
        raise SecretError(
            f"{variable}={reference} is not a secret reference: write {PREFIX}NAME or "
            f"{PREFIX}projects/PROJECT/secrets/NAME[/versions/N]"
        )
    return name if "/versions/" in name else f"{name}/versions/latest"


class SecretManager:
    """Reads secret versions. `api_url` replaces Google's endpoint (tests; anonymous credentials then)."""

    def __init__(self, api_url: str | None = None) -> None:
        self.api_url = (api_url or DEFAULT_URL).rstrip("/")
        self._anonymous = api_url is not None
        self._session: requests.Session | None = None

    def _http(self, variable: str) -> requests.Session:
        import google.auth
        import google.auth.exceptions
        import requests
        from google.auth.transport.requests import AuthorizedSession

        if self._session is None:
            if self._anonymous:
                self._session = requests.Session()
            else:
                try:
                    credentials, _ = google.auth.default(
                        scopes=["https://www.googleapis.com/auth/cloud-platform"]
                    )
                except google.auth.exceptions.DefaultCredentialsError:
                    raise SecretError(
                        f"{variable} is a Secret Manager reference, and no Google credentials were found "
                        "to read it: on a workstation run `gcloud auth application-default login`; on GCP "
                        "the service account's credentials are found by themselves"
                    ) from None
                self._session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        return self._session

    def read(self, variable: str, reference: str, project: str | None) -> str:
        """The payload of the secret `reference` names, as text (trailing newline dropped: `echo`
        and editors add one that no token or URL contains)."""
        import google.auth.exceptions
        import requests

        name = version_name(variable, reference, project)
        try:
            response = self._http(variable).get(f"{self.api_url}/v1/{name}:access", timeout=_TIMEOUT)
        except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as error:
            raise SecretError(
                f"could not reach Secret Manager to read {variable} ({name}): {type(error).__name__}; "
                "check the network"
            ) from None
        if response.status_code != 200:
            raise SecretError(_refusal(variable, name, response))
        try:
            data = base64.b64decode(response.json()["payload"]["data"], validate=True)
            return data.decode("utf-8").rstrip("\r\n")
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise SecretError(f"{variable}: the secret {name} does not hold UTF-8 text") from None

    def resolve(self, values: Mapping[str, str | None], project: str | None) -> dict[str, str]:
        """The variables among `values` that are references, read."""
        return {
            variable: self.read(variable, value, project)
            for variable, value in values.items()
            if value is not None and is_reference(value)
        }


def _refusal(variable: str, name: str, response: requests.Response) -> str:
    secret = name.split("/versions/", maxsplit=1)[0]
    if response.status_code == 404:
        return (
            f"{variable}: the secret {name} does not exist (or has no such version): create it with "
            f"`printf %s VALUE | gcloud secrets create {secret.rsplit('/', 1)[-1]} --data-file=-`"
        )
    if response.status_code == 403:
        return (
            f"{variable}: the bot's identity may not read {secret}: grant it "
            "roles/secretmanager.secretAccessor on the secret (and enable the Secret Manager API)"
        )
    if response.status_code == 400 and "DISABLED" in response.text.upper():
        return f"{variable}: the secret version {name} is disabled: enable it or point at another version"
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.reason
    return f"{variable}: Secret Manager refused {name} (HTTP {response.status_code}: {message})"
