"""The bot's HTTP port, served by waitress (a production WSGI server) in a background thread so the
composition root can stop it:

- `/healthz`, liveness: the process works (its threads run). Failing it means "restart me".
- `/readyz`, readiness: the bot can do its job now (Pub/Sub answers, the store answers, Slack answers,
  the Socket Mode WebSocket is up). Failing it means "wait, or look": a restart would not fix an
  unreachable Pub/Sub.
- `/metrics`, Prometheus' text format.
- `/slack/events` in HTTP mode.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
#: A probe: whether it passes, and what it saw (shown as JSON to whoever asks).
Probe = Callable[[], tuple[bool, dict[str, object]]]
#: The metrics exposition: body and content type.
Exposition = Callable[[], tuple[bytes, str]]


def wsgi_app(
    bolt: App | None, live: Probe, ready: Probe, metrics: Exposition | None = None
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    slack = SlackRequestHandler(bolt) if bolt is not None else None
    probes = {"/healthz": (live, "ok", "unhealthy"), "/readyz": (ready, "ready", "not ready")}

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in probes:
            probe, good, bad = probes[path]
            passed, details = probe()
            body = json.dumps({"status": good if passed else bad, **details}).encode()
            status = "200 OK" if passed else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if metrics is not None and path == "/metrics":
            body, content_type = metrics()
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
            return [body]
        if slack is not None and path == "/slack/events":
            return slack(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return serve


class HttpServer:
    def __init__(
        self,
        app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
        port: int,
        paths: str = "/slack/events, /healthz, /readyz, /metrics",
    ) -> None:
        # Bolt acks within 3 s from the request thread and runs listeners in its own pool, so a
        # handful of request threads is plenty.
        self._server = create_server(app, host="0.0.0.0", port=port, threads=8, ident="netlog-bot")
        self._thread = threading.Thread(target=self._server.run, name="netlog-http", daemon=True)
        self.port = port
        self.paths = paths

    def start(self) -> None:
        self._thread.start()
        log.info("http: listening on port %d (%s)", self.port, self.paths)

    def stop(self) -> None:
        self._server.close()
        if self._thread.ident is not None:  # stopping a server that never started is fine too
            self._thread.join(5)
