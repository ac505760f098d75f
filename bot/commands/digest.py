"""`netlog-bot digest`: each channel's digest printed from the store at NETLOG_DB_URL, and its chart
written when asked. No Slack, no Pub/Sub; Kubernetes only to read the clusters' NetworkLogging
settings when `clusters:` names some."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.adapters.kube import Clusters
from bot.adapters.store import Store, StoreUnreadable
from bot.commands.history import missing_store
from bot.core.digest import Digest, Period
from bot.core.durations import parse_duration
from bot.render.chart import render_chart
from bot.render.digest import CHART_TITLE, digest_text
from bot.services.digest import Digests
from bot.settings import Settings


def run_digest(
    settings: Settings,
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    clusters: Clusters | None = None,
    now: datetime | None = None,
) -> int:
    """Exit 0 with the digests, or 2 with a sentence."""
    try:
        period = Period.ending(_until(args.until, now), parse_duration(args.since))
    except ValueError as error:
        print(f"netlog-bot digest: {error}", file=err)
        return 2
    if missing_store(settings.env.db_url, "digest", err):
        return 2
    digest_settings = settings.file.digest
    zone = ZoneInfo(digest_settings.timezone)
    store = Store(settings.env.db_url)
    try:
        store.ready_to_read()
        digests = Digests(store, settings.routing, digest_settings.channels, clusters)
        made = digests.make(period, [args.channel] if args.channel else None)
    except StoreUnreadable as error:
        print(f"netlog-bot digest: {error}", file=err)
        return 2
    finally:
        store.close()
    for n, digest in enumerate(made):
        if n:
            print("─" * 60, file=out)
        out.write(digest_text(digest, settings.logging_project, zone))
        if args.chart:
            path = _chart_path(Path(args.chart), digest, len(made))
            path.write_bytes(render_chart(digest.series, CHART_TITLE, zone))
            print(f"Chart: {path}", file=out)
    return 0


def _until(text: str | None, now: datetime | None) -> datetime:
    if text is None:
        return now or datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--until {text!r} is not an ISO 8601 time like 2026-12-01T09:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _chart_path(path: Path, digest: Digest, count: int) -> Path:
    if count == 1 or digest.channel is None:
        return path
    return path.with_name(f"{path.stem}-{digest.channel}{path.suffix or '.png'}")
