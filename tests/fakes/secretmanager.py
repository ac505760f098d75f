"""A fake Secret Manager: `GET /v1/projects/P/secrets/S/versions/V:access`, as the REST API answers
it (the bot reads secrets with google-auth's session, pointed here by NETLOG_SECRET_MANAGER_URL).

Faithful where our code can tell the difference:
- the answer is `{"name": "projects/NUMBER/secrets/S/versions/N", "payload": {"data": BASE64,
  "dataCrc32c": "..."}}` (Google names the project by number in the answer);
- `latest` is the newest enabled version; a secret or version that does not exist is 404 NOT_FOUND
  ("Secret [projects/NUMBER/secrets/S] not found or has no versions."), a disabled version 400
  FAILED_PRECONDITION ("... is in DISABLED state."), and `deny(S)` makes it 403 PERMISSION_DENIED
  ("Permission 'secretmanager.versions.access' denied for resource ..."), each in Google's JSON error
  shape;
- any other path is 404, any other method 405.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import zlib
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.server import LoopbackServer

PROJECT_NUMBER = "123456789012"
_ACCESS = re.compile(r"^/v1/projects/([^/]+)/secrets/([^/]+)/versions/([^/:]+):access$")


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


class FakeSecretManager(LoopbackServer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, str], list[tuple[bytes, bool]]] = {}
        self._denied: set[tuple[str, str]] = set()
        self.accessed: list[str] = []
        super().__init__(self._serve())

    def add(self, project: str, secret: str, value: str | bytes, *, enabled: bool = True) -> int:
        """Adds a version to `secret`; returns its number (1, 2, ...)."""
        data = value.encode() if isinstance(value, str) else value
        with self._lock:
            versions = self._versions.setdefault((project, secret), [])
            versions.append((data, enabled))
            return len(versions)

    def deny(self, project: str, secret: str) -> None:
        with self._lock:
            self._denied.add((project, secret))

    @property
    def api_url(self) -> str:
        return self.root

    def access(self, project: str, secret: str, version: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.accessed.append(f"projects/{project}/secrets/{secret}/versions/{version}")
            resource = f"projects/{PROJECT_NUMBER}/secrets/{secret}"
            if (project, secret) in self._denied:
                message = (
                    "Permission 'secretmanager.versions.access' denied for resource "
                    f"'{resource}/versions/{version}' (or it may not exist)."
                )
                return 403, _error(403, "PERMISSION_DENIED", message)
            versions = self._versions.get((project, secret), [])
            if version == "latest":
                enabled = [n for n, (_, on) in enumerate(versions, 1) if on]
                number = enabled[-1] if enabled else 0
            else:
                number = int(version) if version.isdigit() else 0
            if not 1 <= number <= len(versions):
                where = resource if not versions else f"{resource}/versions/{version}"
                return 404, _error(404, "NOT_FOUND", f"Secret [{where}] not found or has no versions.")
            data, on = versions[number - 1]
            if not on:
                message = f"Secret Version [{resource}/versions/{number}] is in DISABLED state."
                return 400, _error(400, "FAILED_PRECONDITION", message)
        checksum = str(zlib.crc32(data))  # Google sends CRC32C; the bot does not check it
        return 200, {
            "name": f"{resource}/versions/{number}",
            "payload": {"data": base64.b64encode(data).decode(), "dataCrc32c": checksum},
        }

    def _serve(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                match = _ACCESS.match(self.path.split("?", 1)[0])
                if match is None:
                    self._send(404, _error(404, "NOT_FOUND", f"The requested URL {self.path} was not found."))
                    return
                self._send(*fake.access(*match.groups()))

            def do_POST(self) -> None:
                self._send(405, _error(405, "METHOD_NOT_ALLOWED", "Method not allowed."))

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
