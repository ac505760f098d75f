"""Hot-path benchmarks, printed as ratios against a baseline run in the same process.

- parse: `parse_message` per message vs a bare `json.loads` of the same bytes (the floor).
- record: orjson vs json for the store's event record (why the store uses orjson).
- fold: `Grouper.fold` per event vs parsing it (grouping must stay cheaper than parsing).
Machines are noisy, so nothing here asserts a time; compare ratios between commits.
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable

import orjson

from bot.adapters.store.records import event_to_record
from bot.core.events import NetworkNames, parse_message
from bot.core.grouping import Grouper, GroupingPolicy
from bot.core.routing import Route, RoutingTable
from bot.demo.traffic import generate


def best(run: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(run, number=number, repeat=5)) / number


def main() -> None:
    networks = NetworkNames.from_mapping({"169.254.169.254/32": "metadata-server"})
    bodies, events = [], []
    for arrival in generate(7):
        try:
            events.append(parse_message(arrival.data, networks))
        except ValueError:
            continue  # the demo's junk: the baseline below must be able to load every body
        bodies.append(arrival.data)
    records = [event_to_record(e) for e in events]
    routing = RoutingTable((Route((("namespace", "payments*"),), "#payments"),), "#netlog")
    start = events[0].timestamp

    def fold_all() -> None:
        grouper = Grouper(GroupingPolicy(), routing)
        for event in events:
            grouper.fold(event, start)

    def parse_all() -> None:
        for body in bodies:
            parse_message(body, networks)

    loads = best(lambda: [json.loads(b) for b in bodies], 20)
    parse = best(parse_all, 20)
    std_dump = best(lambda: [json.dumps(r) for r in records], 20)
    orjson_dump = best(lambda: [orjson.dumps(r) for r in records], 20)
    fold = best(fold_all, 20)
    n = len(bodies)
    print(f"messages: {n}")
    print(f"parse      {parse / n * 1e6:8.2f} µs/msg   {parse / loads:5.2f}x json.loads (baseline)")
    per_record = orjson_dump / len(records) * 1e6
    print(f"record     {per_record:8.2f} µs/evt   {orjson_dump / std_dump:5.2f}x json.dumps (orjson/json)")
    print(f"fold       {fold / len(events) * 1e6:8.2f} µs/evt   {fold / parse:5.2f}x parse")


if __name__ == "__main__":
    main()
