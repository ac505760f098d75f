"""A fake Google OAuth 2.0 token endpoint for service accounts, as google-auth reaches it.

`write_key_file` makes a service-account JSON key (a fresh RSA key) whose `token_uri` points here;
with GOOGLE_APPLICATION_CREDENTIALS naming it, `google.auth.default()` loads it and each refresh
POSTs `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT` (form-encoded).
Checked like Google checks it, with Google's error bodies (HTTP 400, `error` + `error_description`):
- the RS256 signature, against the public key named by the JWT's `kid`; an unknown or deleted key
  is `invalid_grant: Invalid JWT Signature.`;
- `iss` is the key's service account; `aud` is always https://oauth2.googleapis.com/token, even when
  `token_uri` says otherwise (google-auth signs that, and Google rejects anything else);
- `iat`/`exp` span at most an hour around now; the `scope` claim is present.
Each grant issues a new opaque access token (`expires_in` settable, to make it expire soon) and is
recorded; `on_issue` callbacks let a fake API server accept only the newest token.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.server import LoopbackServer

JSON = dict[str, Any]
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
#: The scope the bot asks for in GKE mode.
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PROJECT = "example-project"
CLOCK_SKEW = 300  # seconds Google tolerates between its clock and the assertion's


class Refused(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.body = {"error": error, "error_description": description}


@dataclass(frozen=True)
class Grant:
    access_token: str
    claims: JSON
    expires_in: int


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeGoogleOAuth(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(_handler_for(self))
        self._lock = threading.Lock()
        self.keys: dict[str, tuple[str, rsa.RSAPublicKey]] = {}  # key id -> (service account, key)
        self.grants: list[Grant] = []
        self.expires_in = 3599  # what Google grants
        self._refusals: list[Refused] = []
        self._callbacks: list[Callable[[str], None]] = []

    @property
    def token_uri(self) -> str:
        return f"{self.root}/token"

    def write_key_file(self, path: Path, account: str = "netlog-bot") -> Path:
        """A service-account key as the IAM console downloads it, its public half registered here."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id, email = uuid.uuid4().hex, f"{account}@{PROJECT}.iam.gserviceaccount.com"
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        info = {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": key_id,
            "private_key": pem.decode(),
            "client_email": email,
            "client_id": str(uuid.uuid4().int)[:21],
            "token_uri": self.token_uri,
        }
        with self._lock:
            self.keys[key_id] = (email, key.public_key())
        path.write_text(json.dumps(info, indent=2))
        return path

    def delete_key(self, key_id: str) -> None:
        """As `gcloud iam service-accounts keys delete`: assertions it signed are refused from now on."""
        with self._lock:
            del self.keys[key_id]

    def refuse_next(self, error: str, description: str) -> None:
        with self._lock:
            self._refusals.append(Refused(error, description))

    def on_issue(self, callback: Callable[[str], None]) -> None:
        """Call `callback(access token)` for each token issued, before the answer leaves."""
        with self._lock:
            self._callbacks.append(callback)

    # the server

    def _grant(self, form: dict[str, list[str]]) -> JSON:
        grant_type, assertion = (form.get(k, [""])[0] for k in ("grant_type", "assertion"))
        if grant_type != JWT_BEARER:
            raise Refused("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        with self._lock:
            if self._refusals:
                raise self._refusals.pop(0)
            claims = self._verify(assertion)
            grant = Grant(f"ya29.fake-{uuid.uuid4().hex}", claims, self.expires_in)
            self.grants.append(grant)
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(grant.access_token)
        return {"access_token": grant.access_token, "expires_in": grant.expires_in, "token_type": "Bearer"}

    def _verify(self, assertion: str) -> JSON:
        try:
            header_part, claims_part, signature = assertion.split(".")
            header, claims = json.loads(_b64decode(header_part)), json.loads(_b64decode(claims_part))
        except ValueError:
            raise Refused("invalid_grant", "Invalid JWT: not a JWT.") from None
        account, key = self.keys.get(str(header.get("kid")), ("", None))
        if header.get("alg") != "RS256" or key is None:
            raise Refused("invalid_grant", "Invalid JWT Signature.")
        try:
            signed = f"{header_part}.{claims_part}".encode()
            key.verify(_b64decode(signature), signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise Refused("invalid_grant", "Invalid JWT Signature.") from None
        if claims.get("iss") != account:
            raise Refused("invalid_grant", "Invalid JWT Signature.")  # signed, but by another account
        if claims.get("aud") != GOOGLE_TOKEN_URI:
            raise Refused("invalid_grant", "Invalid JWT: Failed audience check.")
        now, iat, exp = time.time(), claims.get("iat", 0), claims.get("exp", 0)
        if not (iat - CLOCK_SKEW <= now <= exp + CLOCK_SKEW and 0 < exp - iat <= 3600):
            raise Refused(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values in the JWT claim.",
            )
        if not claims.get("scope") and not claims.get("target_audience"):
            raise Refused("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        return dict(claims)


def _handler_for(fake: FakeGoogleOAuth) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
            if self.path != "/token":
                status, body = 404, {"error": "not_found"}
            elif content_type != "application/x-www-form-urlencoded":
                status, body = 400, Refused("invalid_request", "Bad Request").body
            else:
                try:
                    status, body = 200, fake._grant(parse_qs(raw.decode()))
                except Refused as refused:
                    status, body = 400, refused.body
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
