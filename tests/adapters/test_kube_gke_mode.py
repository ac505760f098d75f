"""GKE mode of the Kubernetes adapter, over real sockets: `endpoint` + `ca_certificate` in the config,
TLS to a fake API server with a certificate from a throwaway CA, and a bearer token that the real
google-auth gets from a fake Google token endpoint with a service-account key (application default
credentials) and refreshes as it expires. Failures must reach Slack as sentences a person can act on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.auth import _helpers as google_auth_helpers

from bot.adapters.kube import ClusterAccess, ClusterClient, KubeError, api_client
from bot.adapters.slack import SlackGateway, make_client
from bot.adapters.store import Store
from bot.services import BackgroundTasks, build_netlog, configured_clusters
from bot.settings import EnvSettings, Settings, parse_file_config
from tests.environment import GOOGLE_AUTH, scrub
from tests.fakes.google_oauth import CLOUD_PLATFORM, FakeGoogleOAuth
from tests.fakes.kube import FakeKube
from tests.fakes.tls import Authority

# google-auth treats a token as expired this long before its expiry: a lifetime one second longer
# gives a token that is valid for exactly one second.
REFRESH_THRESHOLD = int(google_auth_helpers.REFRESH_THRESHOLD.total_seconds())


@pytest.fixture
def authority() -> Authority:
    return Authority.create()


@pytest.fixture
def oauth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGoogleOAuth]:
    with FakeGoogleOAuth() as fake:
        # Nothing may make google.auth.default() look elsewhere than our key file, or send the
        # clients through a proxy.
        scrub(monkeypatch, drop=GOOGLE_AUTH)
        key_file = fake.write_key_file(tmp_path / "netlog-bot-key.json")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
        yield fake


@pytest.fixture
def kube(authority: Authority, oauth: FakeGoogleOAuth) -> Iterator[FakeKube]:
    with FakeKube(tls=authority.server_context()) as fake:
        # Each new token is the only one accepted: a client that keeps a stale token gets a 401.
        fake.accept_only()
        oauth.on_issue(fake.accept_only)
        yield fake


def connect(kube: FakeKube, ca_certificate: str, *, scheme: bool = False) -> ClusterClient:
    address = kube.url.removeprefix("https://")
    access = ClusterAccess(
        endpoint=f"https://{address}" if scheme else address, ca_certificate=ca_certificate
    )
    return ClusterClient("prod-eu", api_client(access, in_cluster=False, kubeconfig=None))


@pytest.mark.parametrize("scheme", [False, True], ids=["bare-endpoint", "https-endpoint"])
@pytest.mark.parametrize("form", ["pem", "base64"])
def test_networklogging_is_read_over_tls_with_a_google_token(
    kube: FakeKube, oauth: FakeGoogleOAuth, authority: Authority, form: str, scheme: bool
) -> None:
    client = connect(kube, authority.pem if form == "pem" else authority.base64, scheme=scheme)

    assert client.get_logging()["kind"] == "NetworkLogging"
    [grant] = oauth.grants
    assert grant.claims["scope"] == CLOUD_PLATFORM
    assert grant.claims["iss"] == "netlog-bot@example-project.iam.gserviceaccount.com"
    assert kube.requests[-1].headers["authorization"] == f"Bearer {grant.access_token}"


def test_an_expiring_token_is_refreshed_before_the_next_call(
    kube: FakeKube, oauth: FakeGoogleOAuth, authority: Authority
) -> None:
    oauth.expires_in = REFRESH_THRESHOLD + 1
    client = connect(kube, authority.pem)
    client.get_logging()
    assert len(oauth.grants) == 1  # still valid: no second grant for the first call

    oauth.expires_in = 3599
    time.sleep(1.1)
    assert client.annotated_namespaces() == []
    client.get_logging()

    first, second = oauth.grants
    assert first.access_token != second.access_token
    assert kube.tokens == {second.access_token}
    assert [r.headers["authorization"] for r in kube.requests] == [
        f"Bearer {first.access_token}",
        f"Bearer {second.access_token}",
        f"Bearer {second.access_token}",
    ]
    assert all(r.status == 200 for r in kube.requests)


def test_a_ca_that_did_not_sign_the_servers_certificate_is_named(kube: FakeKube) -> None:
    client = connect(kube, Authority.create("some-other-cluster-ca").base64)

    with pytest.raises(KubeError) as caught:
        client.get_logging()

    message = str(caught.value)
    assert message.startswith("The API server of prod-eu presented a certificate")
    assert "the CA certificate does not match the endpoint" in message
    assert "masterAuth.clusterCaCertificate" in message
    assert kube.requests == []  # refused during the handshake: the token was never sent


def test_a_deleted_key_is_a_sentence_about_google_credentials(
    kube: FakeKube, oauth: FakeGoogleOAuth, authority: Authority
) -> None:
    for key_id in list(oauth.keys):
        oauth.delete_key(key_id)

    with pytest.raises(KubeError) as caught:
        connect(kube, authority.pem)

    assert str(caught.value) == (
        "Google did not give the bot an access token (invalid_grant: Invalid JWT Signature.): "
        "check the bot's Google credentials (GOOGLE_APPLICATION_CREDENTIALS, or the service account "
        "it runs as)."
    )
    assert oauth.grants == []
    assert kube.requests == []


def test_a_refused_refresh_is_a_sentence_about_google_credentials_not_a_silent_server(
    kube: FakeKube, oauth: FakeGoogleOAuth, authority: Authority
) -> None:
    oauth.expires_in = REFRESH_THRESHOLD  # expired as soon as it arrives
    client = connect(kube, authority.pem)
    oauth.refuse_next("invalid_grant", "Invalid grant: account not found")

    with pytest.raises(KubeError) as caught:
        client.get_logging()

    assert str(caught.value) == (
        "I cannot reach prod-eu: Google did not give the bot an access token "
        "(invalid_grant: Invalid grant: account not found): check the bot's Google credentials "
        "(GOOGLE_APPLICATION_CREDENTIALS, or the service account it runs as)."
    )
    assert kube.requests == []


def test_a_long_refusal_is_cut_to_one_short_line(
    kube: FakeKube, oauth: FakeGoogleOAuth, authority: Authority
) -> None:
    """What Google (or a proxy in front of it) answers ends up in Slack: one line, not a page."""
    oauth.expires_in = REFRESH_THRESHOLD
    client = connect(kube, authority.pem)
    oauth.refuse_next("invalid_grant", "<html>\n" + "blocked by proxy\n" * 100 + "</html>")

    with pytest.raises(KubeError) as caught:
        client.get_logging()

    sentence = str(caught.value)
    assert "\n" not in sentence
    assert "blocked by proxy blocked by proxy" in sentence
    assert "…): check the bot's Google credentials" in sentence
    assert len(sentence) < 400


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("deleted key", "I cannot reach prod-eu: Google did not give the bot an access token"),
        ("wrong CA", "the CA certificate does not match the endpoint"),
    ],
)
def test_the_person_in_slack_reads_the_sentence(
    kube: FakeKube, oauth: FakeGoogleOAuth, authority: Authority, tmp_path: Path, fault: str, expected: str
) -> None:
    ca = Authority.create("some-other-cluster-ca") if fault == "wrong CA" else authority
    if fault == "deleted key":
        for key_id in list(oauth.keys):
            oauth.delete_key(key_id)
    cluster = {"endpoint": kube.url.removeprefix("https://"), "ca_certificate": ca.base64}
    config = {"access": {"operators": ["U0OP"]}, "clusters": {"prod-eu": cluster}}
    settings = Settings(EnvSettings(), parse_file_config(config))
    store = Store(f"sqlite:///{tmp_path / 'netlog.db'}")
    store.migrate()
    # An operator's commands ask Slack nothing: a client pointed at a closed port proves it.
    slack = SlackGateway(make_client("xoxb-unused", "http://127.0.0.1:9/api/"))
    clusters = configured_clusters(settings)
    netlog = build_netlog(
        settings, store, slack, clusters, lambda: datetime(2026, 6, 1, tzinfo=UTC), BackgroundTasks()
    )
    try:
        reply = netlog.handle("U0OP", "enable deny")
    finally:
        store.close()

    assert reply.text.startswith(":warning: ")
    assert expected in reply.text
