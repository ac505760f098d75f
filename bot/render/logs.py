"""Log lines, for people or for Cloud Logging.

- `text`: `2026-12-03 09:00:00,123 WARNING bot.engine: ...`, for a terminal.
- `json`: one JSON object per line in Cloud Logging's structured format (`severity`, `message`,
  `time`, `logging.googleapis.com/sourceLocation`, plus `logger`), which the logging agents of GKE,
  Cloud Run and App Engine turn into entries with the right severity. A traceback goes into
  `message`, where Error Reporting finds it. No trace fields: the bot serves no traced requests.

Either way a line never carries a secret: Slack tokens and database passwords that reach a message
(an error quoting a URL or a header, say) are masked before it is written.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]

#: Set by the platforms that forward a container's stdout/stderr to Cloud Logging and read JSON
#: lines there: Cloud Run (K_SERVICE) and App Engine (GAE_SERVICE). GKE sets nothing of the kind,
#: so the Kubernetes manifests ask for JSON explicitly.
_ON_GCP = ("K_SERVICE", "GAE_SERVICE")

_SECRETS = (
    # Slack tokens: bot, user, app-level, refresh and configuration tokens.
    (re.compile(r"\b(xox[abeprs]|xapp)-[0-9A-Za-z-]+"), r"\1-***"),
    # A password in a database URL: scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@"), r"\1***@"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 ***"),
)

#: Python's level names that are also Cloud Logging severities; anything else is DEFAULT.
_SEVERITIES = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})


def masked(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def log_format(environ: Mapping[str, str]) -> tuple[LogFormat, str | None]:
    """NETLOG_LOG_FORMAT (`text` or `json`), else JSON on Cloud Run and App Engine, text elsewhere.
    The second item is a warning when the variable holds something else."""
    asked = environ.get("NETLOG_LOG_FORMAT", "").strip().lower()
    if asked in ("text", "json"):
        return ("json" if asked == "json" else "text"), None
    chosen: LogFormat = "json" if any(environ.get(name) for name in _ON_GCP) else "text"
    if asked:
        return chosen, f"NETLOG_LOG_FORMAT={asked!r} is neither 'text' nor 'json'; writing {chosen} lines"
    return chosen, None


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return masked(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        elif record.stack_info:
            message = f"{message}\n{self.formatStack(record.stack_info)}"
        line = {
            "severity": record.levelname if record.levelname in _SEVERITIES else "DEFAULT",
            "message": masked(message),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "logger": record.name,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": record.lineno,
                "function": record.funcName,
            },
        }
        if record.threadName:
            line["thread"] = record.threadName
        return json.dumps(line, ensure_ascii=False)


def formatter(kind: LogFormat) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else TextFormatter()
