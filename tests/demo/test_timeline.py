"""Reading replay files as streams (JSON lines, arrays, pretty-printed documents), parsing each entry
once with unreadable ones placed beside the entry before them, and ordering by time within a
bounded window (newest-first input reversed through a spool file)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.adapters.store import Reject
from bot.core.events import NetworkNames, PolicyEvent, RawMessage
from bot.demo import timeline
from bot.demo.player import Timed
from bot.demo.timeline import Tally, in_time_order, place, read_messages
from bot.pipeline import entry_parser
from bot.settings import SettingsError
from tests.logentries import log_entry

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def entries(count: int, step: int = 1) -> list[dict[str, Any]]:
    return [log_entry(at=T0 + timedelta(seconds=step * n), insert_id=f"e{n}") for n in range(count)]


def read(data: bytes) -> list[RawMessage]:
    return list(read_messages(io.BytesIO(data)))


def at(seconds: float) -> Timed:
    return Timed(T0 + timedelta(seconds=seconds), RawMessage(b"{}", f"t{seconds}"))


def seconds(items: list[Timed]) -> list[float]:
    return [(item.at - T0).total_seconds() for item in items]


# --- reading -------------------------------------------------------------------------------------


def test_json_lines_are_read_as_bytes_named_by_line_with_blank_lines_counted() -> None:
    data = b'\n{"a": 1}\r\n\n   \nnot json\n{"b": "\xc3\xa9"}'
    tally = Tally()
    messages = list(read_messages(io.BytesIO(data), tally))
    assert messages == [
        RawMessage(b'{"a": 1}', "line 2"),
        RawMessage(b"not json", "line 5"),
        RawMessage(b'{"b": "\xc3\xa9"}', "line 6"),
    ]
    assert tally == Tally(bytes_read=len(data), messages=3)


def test_a_bad_line_later_in_the_file_becomes_a_reject_not_an_error() -> None:
    messages = read(b'{"a": 1}\n\xff\xfe junk\n')
    assert messages[1] == RawMessage(b"\xff\xfe junk", "line 2")
    placed = list(place(messages, entry_parser(NetworkNames()), T0))
    assert all(isinstance(item.message, Reject) for item in placed)


def test_a_binary_file_is_refused_by_its_first_line() -> None:
    with pytest.raises(UnicodeDecodeError) as refused:
        read(b"\x1f\x8b\x08\x00 gzip, not text")
    assert refused.value.start == 1


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_a_json_array_is_read_item_by_item_as_the_whole_document_would_be(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timeline, "CHUNK", chunk)  # values cut across chunks at every place
    document = [*entries(3), 12345, "é", [1, {"x": None}]]
    messages = read(b"\n  " + json.dumps(document, indent=2).encode() + b"\n")
    # what loading the whole array and re-encoding each item gave
    assert messages == [
        RawMessage(json.dumps(item).encode(), f"item {n}") for n, item in enumerate(document, 1)
    ]


@pytest.mark.parametrize("text", ["[]", " [ ] \n"])
def test_an_empty_array_has_no_items(text: str) -> None:
    assert read(text.encode()) == []


@pytest.mark.parametrize(
    "text", ['[{"insertId": "a"},', '[{"a": 1} {"b": 2}]', '[{"a": 1},]', '[{"a": 1}] trailing', "[{"]
)
def test_a_broken_array_is_an_error(text: str) -> None:
    with pytest.raises(SettingsError, match="looks like a JSON array but is not valid JSON"):
        read(text.encode())


def test_pretty_printed_documents_are_read_as_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline, "CHUNK", 5)
    first, second = entries(2)
    data = (json.dumps(first, indent=2) + "\n" + json.dumps(second, indent=2) + "\n").encode()
    assert read(data) == [
        RawMessage(json.dumps(first).encode(), "document 1"),
        RawMessage(json.dumps(second).encode(), "document 2"),
    ]


def test_a_truncated_document_is_an_error() -> None:
    with pytest.raises(SettingsError, match="looks like JSON documents"):
        read(b'{\n  "insertId": "a",\n')


def test_lines_are_read_lazily() -> None:
    def endless() -> Iterator[bytes]:
        for n in range(10**9):
            yield json.dumps(log_entry(at=T0, insert_id=f"e{n}")).encode() + b"\n"

    source: Any = endless()  # iterating it is all read_messages does with JSON lines
    messages = read_messages(source)
    assert [next(messages).message_id for _ in range(3)] == ["line 1", "line 2", "line 3"]


# --- placing -------------------------------------------------------------------------------------


def test_each_entry_is_parsed_once_and_unreadable_ones_arrive_with_the_entry_before() -> None:
    lines = [b"junk 1", *(json.dumps(e).encode() for e in entries(2, step=60)), b"junk 2", b"[]"]
    placed = list(
        place(
            (RawMessage(line, f"line {n}") for n, line in enumerate(lines, 1)),
            entry_parser(NetworkNames()),
            T0,
        )
    )
    kinds = [(type(item.message).__name__, (item.at - T0).total_seconds()) for item in placed]
    assert kinds == [
        ("Reject", 0.0),  # before the first entry: arrives with it
        ("PolicyEvent", 0.0),
        ("PolicyEvent", 60.0),
        ("Reject", 60.0),
        ("Reject", 60.0),
    ]
    first = placed[1].message
    assert isinstance(first, PolicyEvent)
    assert first.insert_id == "e0"
    codes = [item.message.code for item in placed if isinstance(item.message, Reject)]
    assert codes == ["not_json", "not_json", "not_log_entry"]
    junk = placed[0].message
    assert isinstance(junk, Reject)
    assert (junk.raw, junk.message_id) == (b"junk 1", "line 1")


def test_without_any_entry_rejects_arrive_at_the_fallback_time() -> None:
    fallback = T0 + timedelta(days=1)
    placed = list(place([RawMessage(b"junk", "line 1")], entry_parser(NetworkNames()), fallback))
    assert [item.at for item in placed] == [fallback]


# --- ordering ------------------------------------------------------------------------------------


def test_local_disorder_within_the_window_is_sorted_and_ties_keep_their_order() -> None:
    arrivals = [at(s) for s in (1, 0, 2, 2.0, 5, 3, 4, 2, 6)]
    ordered = list(in_time_order(arrivals, window=4))
    assert seconds(ordered) == [0, 1, 2, 2, 2, 3, 4, 5, 6]
    two = T0 + timedelta(seconds=2)
    assert [id(item) for item in ordered if item.at == two] == [
        id(item) for item in arrivals if item.at == two
    ]


def test_an_entry_older_than_the_window_is_kept_and_comes_out_late() -> None:
    arrivals = [at(s) for s in (10, 11, 12, 13, 14, 1, 15)]
    assert seconds(list(in_time_order(arrivals, window=2))) == [10, 11, 12, 1, 13, 14, 15]


def test_newest_first_input_is_reversed_through_the_spool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline, "SPOOL_BLOCK", 3)  # several blocks, the last one short
    arrivals = [at(s) for s in range(100, -1, -1)]
    arrivals[10], arrivals[11] = arrivals[11], arrivals[10]  # gcloud's local disorder
    assert seconds(list(in_time_order(arrivals, window=5))) == list(range(101))


def test_ordering_holds_one_window_before_the_first_entry_comes_out() -> None:
    pulled = 0

    def arrivals() -> Iterator[Timed]:
        nonlocal pulled
        for n in range(10**9):
            pulled += 1
            yield at(n)

    ordered = in_time_order(arrivals(), window=50)
    assert seconds([next(ordered) for _ in range(3)]) == [0, 1, 2]
    assert pulled == 53
