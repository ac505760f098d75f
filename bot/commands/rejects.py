"""`netlog-bot rejects`: the messages the bot refused, newest first, from the store at NETLOG_DB_URL:
when, why (code and sentence) and a safe preview of what arrived, so a sink with the wrong filter or
log name is found in a minute."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TextIO

from bot.adapters.store import Store, StoreUnreadable
from bot.commands.history import missing_store
from bot.core.durations import parse_duration
from bot.settings import Settings

#: Characters of a reject's body shown: enough to see what it is (the store keeps 4 kB).
PREVIEW = 160


def run_rejects(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        since = datetime.now(UTC) - parse_duration(args.since)
    except ValueError as error:
        print(f"netlog-bot rejects: --since: {error}", file=err)
        return 2
    if missing_store(settings.env.db_url, "rejects", err):
        return 2
    store = Store(settings.env.db_url)
    try:
        store.ready_to_read()
        found = store.events.rejects(args.limit, since=since, code=args.code)
    except StoreUnreadable as error:
        print(f"netlog-bot rejects: {error}", file=err)
        return 2
    finally:
        store.close()
    what = f" of code {args.code}" if args.code else ""
    if not found:
        print(f"No messages rejected{what} in the last {args.since}.", file=out)
        return 0
    noun = "message" if len(found) == 1 else "messages"
    more = f" (the newest {args.limit})" if len(found) == args.limit else ""
    print(f"{len(found)} {noun} rejected{what} in the last {args.since}{more}, newest first:", file=out)
    for reject in found:
        about = f" message {reject.message_id}" if reject.message_id else ""
        print(f"\n{reject.received_at:%Y-%m-%d %H:%M:%S} UTC  {reject.code}{about}", file=out)
        print(f"  {reject.reason}", file=out)
        print(f"  {preview(reject.raw, reject.raw_size)}", file=out)
    return 0


def preview(raw: bytes, size: int) -> str:
    """The body as one line of printable text: undecodable bytes and control characters escaped."""
    text = raw.decode("utf-8", "backslashreplace")
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    cut = shown[:PREVIEW]
    rest = f" … ({size:,} bytes)" if len(shown) > PREVIEW or size > len(raw) else ""
    return cut + rest
