"""`netlog-bot replay` of a storm file, next to decoding the same file, in the same run.

    python -m bench.replay [--entries N] [--profile FILE]

Writes N storm entries (bench/storm.py) to a temporary file as JSON lines, then measures:
- baseline: `orjson.loads` of every line of that file, in this process (the floor: decode only);
- replay: `python -m bot replay FILE` in a subprocess (SQLite, output discarded): wall time,
  entries/s, and its peak RSS (RUSAGE_CHILDREN: the replay is this process's only child).
`--profile FILE` also runs the replay under cProfile and prints where its time goes.
Machines are noisy: nothing here asserts a time; compare ratios between commits.
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.report import Row, header, render
from bench.storm import StormShape, storm


def write_storm(path: Path, entries: int) -> int:
    with path.open("wb") as file:
        for body in storm(StormShape(entries=entries)):
            file.write(body + b"\n")
    return path.stat().st_size


def decode_only(path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    with path.open("rb") as file:
        for line in file:
            orjson.loads(line)
            count += 1
    return count, time.perf_counter() - started


def replay(path: Path, profile: Path | None) -> tuple[float, int]:
    """Seconds and peak RSS in bytes of `python -m bot replay` on `path`."""
    command = [sys.executable, "-m", "bot", "replay", str(path)]
    if profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "bot", "replay", str(path)]
    # No host settings: the bundled defaults, and a temporary SQLite store.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETLOG_", "SLACK_", "GOOGLE_"))}
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
    # wait4: this child's own peak (RUSAGE_CHILDREN would be the largest of every child so far).
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, command)
    return seconds, usage.ru_maxrss * 1024  # KiB on Linux


def replay_rows(entries: int, profile: Path | None = None) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="netlog-bench-") as folder:
        path = Path(folder) / "storm.jsonl"
        write_storm(path, entries)
        count, decode_seconds = decode_only(path)
        seconds, peak = replay(path, None)
        if profile is not None:
            replay(path, profile)
    return [
        Row(
            f"replay {count:,}: entries/s",
            count / seconds,
            "entries/s",
            "orjson.loads only",
            count / decode_seconds,
        ),
        Row(f"replay {count:,}: wall time", seconds, "s", "target: under 120 s for 1M"),
        Row(f"replay {count:,}: peak RSS", peak / 1e6, "MB", "target: under 300 MB"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=200_000, help="storm entries in the file")
    parser.add_argument("--profile", type=Path, help="also run under cProfile, keep the stats here")
    args = parser.parse_args()
    rows = replay_rows(args.entries, args.profile)
    print(f"replay of {args.entries:,} storm entries as JSON lines, SQLite")
    print(header())
    for row in rows:
        print(render(row))
    if args.profile is not None:
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
