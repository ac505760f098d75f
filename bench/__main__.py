"""`make bench`: every storm stage of issue 8, each figure next to a baseline measured in the same run.

Inputs are generated storms (`bench/storm.py`): many namespaces and flows, both payload formats,
pods, nodes and IPs, redeliveries. Machines are noisy, so nothing here asserts a time; compare ratios
between commits, measured on the same machine.
"""

from __future__ import annotations

import argparse
import platform

from bench.core import core_rows
from bench.report import header, render
from bench.storm import StormShape, storm


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--entries", type=int, default=200_000, help="storm size for the core stage")
    parser.add_argument("--repeat", type=int, default=3, help="passes per figure (the best is kept)")
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}")
    print(header())
    bodies = list(storm(StormShape(entries=args.entries)))
    for row in core_rows(bodies, args.repeat):
        print(render(row), flush=True)


if __name__ == "__main__":
    main()
