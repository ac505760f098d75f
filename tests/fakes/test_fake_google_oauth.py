"""The fake Google token endpoint grants a correctly signed service-account assertion a new token each
time and refuses, with Google's error bodies, what Google refuses. (That google-auth's own assertions
pass is shown by tests/adapters/test_kube_gke_mode.py.)"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.google_oauth import CLOUD_PLATFORM, GOOGLE_TOKEN_URI, JWT_BEARER, FakeGoogleOAuth


@pytest.fixture
def oauth() -> Iterator[FakeGoogleOAuth]:
    with FakeGoogleOAuth() as fake:
        yield fake


def _part(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def assertion(key_file: Path, *, key: rsa.RSAPrivateKey | None = None, **changes: Any) -> str:
    """An RS256 JWT as google-auth signs it with this key file; `changes` set claims (None drops one)."""
    info = json.loads(key_file.read_text())
    if key is None:
        loaded = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        key = loaded
    now = int(time.time())
    claims = {"iss": info["client_email"], "aud": GOOGLE_TOKEN_URI, "scope": CLOUD_PLATFORM}
    claims |= {"iat": now, "exp": now + 3600} | changes
    header = {"alg": "RS256", "typ": "JWT", "kid": info["private_key_id"]}
    signed = f"{_part(header)}.{_part({k: v for k, v in claims.items() if v is not None})}"
    signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signed}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def post(oauth: FakeGoogleOAuth, jwt: str, grant_type: str = JWT_BEARER) -> tuple[int, dict[str, Any]]:
    form = urllib.parse.urlencode({"grant_type": grant_type, "assertion": jwt}).encode()
    request = urllib.request.Request(oauth.token_uri, data=form, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, dict(json.load(answer))
    except urllib.error.HTTPError as error:
        return error.code, dict(json.load(error))


def test_each_grant_is_a_new_bearer_token(oauth: FakeGoogleOAuth, tmp_path: Path) -> None:
    key_file = oauth.write_key_file(tmp_path / "key.json")
    issued: list[str] = []
    oauth.on_issue(issued.append)

    answers = [post(oauth, assertion(key_file)) for _ in range(2)]

    assert [status for status, _ in answers] == [200, 200]
    assert [set(body) for _, body in answers] == 2 * [{"access_token", "expires_in", "token_type"}]
    assert [(body["token_type"], body["expires_in"]) for _, body in answers] == 2 * [("Bearer", 3599)]
    assert issued == [body["access_token"] for _, body in answers] == [g.access_token for g in oauth.grants]
    assert len(set(issued)) == 2
    assert oauth.grants[0].claims["scope"] == CLOUD_PLATFORM


@pytest.mark.parametrize(
    ("change", "error", "description"),
    [
        ({"aud": "TOKEN_URI"}, "invalid_grant", "Invalid JWT: Failed audience check."),
        (
            {"iss": "someone@example-project.iam.gserviceaccount.com"},
            "invalid_grant",
            "Invalid JWT Signature.",
        ),
        ({"key": "another"}, "invalid_grant", "Invalid JWT Signature."),
        ({"key": "deleted"}, "invalid_grant", "Invalid JWT Signature."),
        ({"scope": None}, "invalid_scope", "Invalid OAuth scope or ID token audience provided."),
        ({"iat": int(time.time()) - 7200}, "invalid_grant", "Invalid JWT: Token must be a short-lived"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type", "Invalid grant_type"),
    ],
    ids=["aud-is-token-uri", "other-issuer", "other-key", "deleted-key", "no-scope", "too-old", "grant-type"],
)
def test_what_google_refuses_is_a_400_with_its_error(
    oauth: FakeGoogleOAuth, tmp_path: Path, change: dict[str, Any], error: str, description: str
) -> None:
    key_file = oauth.write_key_file(tmp_path / "key.json")
    claims = dict(change)
    grant_type = claims.pop("grant_type", JWT_BEARER)
    key = claims.pop("key", None)
    if claims.get("aud") == "TOKEN_URI":
        claims["aud"] = oauth.token_uri  # where google-auth posts, but not what Google checks `aud` against
    if key == "deleted":
        oauth.delete_key(next(iter(oauth.keys)))
    signer = rsa.generate_private_key(public_exponent=65537, key_size=2048) if key == "another" else None

    status, body = post(oauth, assertion(key_file, key=signer, **claims), grant_type)

    assert (status, body["error"]) == (400, error)
    assert body["error_description"].startswith(description)
    assert oauth.grants == []
