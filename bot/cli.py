"""Command line: `netlog-bot COMMAND` (also `python -m bot`); `netlog-bot --help` lists them."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO, cast

from bot.adapters.store import StoreUnusable
from bot.adapters.store.migrations import SchemaTooNew
from bot.commands import db
from bot.commands.replay import run_replay
from bot.render.logs import formatter, log_format, masked
from bot.render.text import printable
from bot.settings import SettingsError, load_settings

log = logging.getLogger("netlog-bot")


def replay_file(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.file == "-":
        return run_replay(sys.stdin.buffer, settings, sys.stdout, args.db, sys.stderr)
    with Path(args.file).open("rb") as source:
        return run_replay(source, settings, sys.stdout, args.db, sys.stderr)


# The service commands (and the demo, through bot.app) import the Slack, Pub/Sub and Kubernetes
# clients: only when run, so that `replay` of a large file keeps them out of its memory.
def demo_command(args: argparse.Namespace) -> int:
    from bot.commands.demo import run_demo

    return run_demo(sys.stdout, seed=args.seed)


def bot_command(args: argparse.Namespace) -> int:
    from bot.commands.run import run_bot

    return run_bot(load_settings())


def check_command(args: argparse.Namespace) -> int:
    from bot.commands.check import check

    return check(load_settings(), sys.stdout, migrate=args.migrate, timeout=args.timeout)


def ingest_command(args: argparse.Namespace) -> int:
    from bot.commands.ingest import run_ingest

    return run_ingest(load_settings())


def query_command(args: argparse.Namespace) -> int:
    from bot.commands.history import run_query

    words = [*args.words, *(["--cluster", args.cluster] if args.cluster else [])]
    return run_query(load_settings(), args.command, words, sys.stdout, sys.stderr)


def digest_command(args: argparse.Namespace) -> int:
    from bot.commands.digest import run_digest
    from bot.services import configured_clusters

    settings = load_settings()
    clusters = configured_clusters(settings) if settings.file.clusters else None
    return run_digest(settings, args, sys.stdout, sys.stderr, clusters)


def explain_command(args: argparse.Namespace) -> int:
    from bot.commands.explain import run_explain

    return run_explain(load_settings(), args.cluster, " ".join(args.flow), sys.stdout, sys.stderr)


def rejects_command(args: argparse.Namespace) -> int:
    from bot.commands.rejects import run_rejects

    return run_rejects(load_settings(), args, sys.stdout, sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netlog-bot", description="GKE network policy deny logs, grouped into Slack alerts."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    # -v also after the command (`netlog-bot demo -v`); SUPPRESS keeps an earlier -v.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug details"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _offline_commands(commands, common)
    _service_commands(commands, common)
    return parser


def _offline_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """The commands that print to the terminal and need no Slack or Google."""
    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="run the whole pipeline on bundled sample traffic and print what Slack would show",
    )
    demo.add_argument("--seed", type=int, default=7, help="seed of the generated traffic")
    demo.set_defaults(body=demo_command)
    replay = commands.add_parser(
        "replay", parents=[common], help="run the pipeline over a file of LogEntries and print the alerts"
    )
    replay.add_argument(
        "file",
        help="JSON lines, push envelopes, `gcloud logging read --format=json` or `jq .` output; - for stdin",
    )
    replay.add_argument(
        "--db", help="keep the replay in this database URL instead of a temporary SQLite file"
    )
    replay.set_defaults(body=replay_file)


def _service_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """The bot itself, and what operators run against its settings and store."""
    commands.add_parser(
        "run",
        parents=[common],
        help="the bot: ingest, grouping, Slack alerts and the Slack app, until SIGTERM",
    ).set_defaults(body=bot_command)
    commands.add_parser(
        "ingest", parents=[common], help="pull from NETLOG_SUBSCRIPTION into the store until SIGTERM"
    ).set_defaults(body=ingest_command)
    doctor = commands.add_parser(
        "check",
        parents=[common],
        help="the settings, the store, Slack, Pub/Sub, Cloud Logging and each cluster: one line each",
    )
    doctor.add_argument(
        "--migrate", action="store_true", help="also create the store or upgrade its schema (as a start does)"
    )
    doctor.add_argument(
        "--timeout",
        type=float,
        default=8.0,
        metavar="SECONDS",
        help="how long to wait for Slack, Google or a cluster to answer (default 8)",
    )
    doctor.set_defaults(body=check_command)
    database = commands.add_parser("db", help="the store's schema").add_subparsers(
        dest="db_command", required=True, metavar="COMMAND"
    )
    upgrade = database.add_parser(
        "upgrade", parents=[common], help="upgrade the schema at NETLOG_DB_URL (every start does it too)"
    )
    upgrade.add_argument(
        "--sql", action="store_true", help="print the DDL from an empty database instead; connect to nothing"
    )
    upgrade.set_defaults(body=lambda args: db.upgrade(load_settings(), sys.stdout, sql=args.sql))
    for verb, about in (
        ("recent", "the latest denied flows, as /netlog recent answers (e.g. ns=payments since=1h)"),
        ("top", "the biggest contributors, as /netlog top answers (e.g. by=source since=24h)"),
    ):
        query = commands.add_parser(verb, help=about)
        query.add_argument("--cluster", help="only this cluster (as cluster=C)")
        query.add_argument(
            "words", nargs=argparse.REMAINDER, help="the same words as in Slack: cluster=C ns=NS since=1h …"
        )
        query.set_defaults(body=query_command)
    digest = commands.add_parser(
        "digest", parents=[common], help="print each digest channel's digest from the store (no Slack needed)"
    )
    digest.add_argument("--since", default="24h", help="how far back the digest reaches (default 24h)")
    digest.add_argument(
        "--until", help="when the digest ends, ISO 8601 (default now); it covers the whole hours before"
    )
    digest.add_argument("--channel", help="only this channel's digest (scoped as routing sends alerts)")
    digest.add_argument(
        "--chart", metavar="FILE", help="also write the chart as PNG (with several channels: FILE-C….png)"
    )
    digest.set_defaults(body=digest_command)
    explain = commands.add_parser(
        "explain",
        parents=[common],
        help="why a flow was denied (which policies isolate the pod) and the minimal policy that allows it",
    )
    explain.add_argument("--cluster", help="the cluster, as named under `clusters:` (needed with several)")
    explain.add_argument(
        "flow", nargs="+", help="the flow as an alert shows it: 'checkout/web → payments/api:8080/tcp'"
    )
    explain.set_defaults(body=explain_command)
    rejects = commands.add_parser(
        "rejects", parents=[common], help="the messages the bot refused, why, and what they held"
    )
    rejects.add_argument("--since", default="1h", help="how far back (default 1h)")
    rejects.add_argument("--code", help="only this reason code, e.g. wrong_log or not_json")
    rejects.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    rejects.set_defaults(body=rejects_command)


def tune_gc() -> None:
    """Collect garbage every 50,000 net allocations instead of every 700. A storm allocates millions
    of short-lived objects (decoded entries, events) while the grouper holds up to
    `max_flows_total` live flows; at the default, collections (and the full ones that scan every
    tracked flow) took 15-30% of parse + fold on the bench storm. Cycles are rare here, so the
    memory this leaves uncollected between passes stays small."""
    gc.set_threshold(50_000, 20, 100)


class PrintableOut:
    """stdout for the terminal commands: whatever they print (log content included) goes through
    `printable`, so a pod name holding `\x1b[2J` is shown, not obeyed."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> int:
        return self._out.write(printable(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)


def fatal(kind: str, sentence: str) -> int:
    """The sentence a start-up mistake ends with (exit 2): a plain line for a person at a terminal,
    an ERROR entry where the log is read as JSON (Cloud Logging shows it with the right severity)."""
    if kind == "json":
        log.error("netlog-bot: %s", sentence)
    else:
        print(f"netlog-bot: {masked(sentence)}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tune_gc()
    quiet = args.command in (
        "check",
        "demo",
        "replay",
        "recent",
        "top",
        "digest",
        "rejects",
        "explain",
    )  # their output is the product; logs only for trouble
    kind, format_warning = log_format(os.environ)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(kind))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO,
        handlers=[handler],
    )
    if format_warning:
        log.warning("%s", format_warning)
    if not args.verbose:
        logging.getLogger("bot.pipeline").setLevel(logging.ERROR)  # rejects are summarised instead
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # "Running job ..." every run
        # The Slack SDK logs every failed request at ERROR before raising it; the gateway turns the
        # failure into a sentence (or a retry) itself, so the SDK's line only doubles it.
        logging.getLogger("slack_sdk.web.base_client").setLevel(logging.CRITICAL)
    stdout = sys.stdout
    sys.stdout = cast(TextIO, PrintableOut(stdout))
    try:
        return int(args.body(args))
    except BrokenPipeError:
        # `netlog-bot replay big.jsonl | head`: the reader has what it wanted. Point stdout at
        # /dev/null so Python's own flush at exit does not complain either.
        with contextlib.suppress(OSError, ValueError):  # ValueError: a stream with no descriptor
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
        return 0
    except (SettingsError, SchemaTooNew, StoreUnusable) as error:
        return fatal(kind, str(error))
    except FileNotFoundError as error:
        return fatal(kind, f"{error.filename}: no such file")
    except OSError as error:
        return fatal(kind, str(error))
    except UnicodeDecodeError as error:  # replay of a gzip file or another binary
        name = getattr(args, "file", "the input")
        return fatal(kind, f"{name}: not UTF-8 text (byte {error.start})")
    finally:
        sys.stdout = stdout
