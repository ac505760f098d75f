"""From a file of LogEntries to a timeline in time order, streaming: memory stays bounded whatever
the file's size.

- Reading (`read_messages`): the format is told by the first non-blank line. `[` starts a JSON array
  (`gcloud logging read --format=json`), read item by item; a line that is only `{` starts
  pretty-printed documents (`jq .`), read one document at a time; anything else is JSON lines, read
  line by line as bytes (a line that is not JSON becomes a reject, like any other bad message).
- Placing (`place`): each entry is parsed once, here; the parsed event (or the reject) travels on to
  the store. An unreadable entry has no time of its own: it arrives with the entry before it.
- Ordering (`in_time_order`): `gcloud logging read` prints newest first, sinks and files are mostly
  oldest first with local disorder. Newest-first input is reversed through a temporary file, then
  entries are sorted within a window of `window` entries. An entry older than the window allows is
  not dropped: it plays at the virtual time current when it comes out, as a late arrival would live.
"""

from __future__ import annotations

import codecs
import heapq
import json
import pickle
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, BinaryIO, NoReturn

from bot.adapters.store import Reject
from bot.core.events import EntryParser, RawMessage, RejectedEntry
from bot.demo.player import Timed
from bot.settings import SettingsError

#: Entries held for sorting: 10 s of a 2,000/s storm, beyond the local disorder of sinks. Measured
#: on 300k storm entries: 20,000 (with FOLD_BATCH 10,000) peaks at 257 MB, 50,000 (20,000) at 316 MB.
REORDER_WINDOW = 20_000
#: Bytes read at a time from a JSON array or from documents.
CHUNK = 1 << 20
#: Entries pickled together when newest-first input is spooled for reversing.
SPOOL_BLOCK = 10_000


@dataclass(slots=True)
class Tally:
    """How far reading has got, for the progress bar."""

    bytes_read: int = 0
    messages: int = 0


def read_messages(source: BinaryIO, tally: Tally | None = None) -> Iterator[RawMessage]:
    """Raw messages, named by their place in the file (`line 3`, `item 3`, `document 3`)."""
    tally = tally if tally is not None else Tally()
    blank = 0
    for line in source:
        tally.bytes_read += len(line)
        if line.strip():
            break
        blank += 1
    else:
        return
    line.decode("utf-8")  # a gzip file or another binary: refused up front (UnicodeDecodeError)
    first = line.lstrip()
    if first.startswith(b"["):
        reader = _json_values(first[1:], source, tally, "item", in_array=True)
    elif first.strip() == b"{":
        reader = _json_values(first, source, tally, "document", in_array=False)
    else:
        reader = _json_lines(line, blank + 1, source, tally)
    for message in reader:
        tally.messages += 1
        yield message


def _json_lines(first: bytes, first_number: int, source: BinaryIO, tally: Tally) -> Iterator[RawMessage]:
    yield RawMessage(_without_newline(first), f"line {first_number}")
    for number, line in enumerate(source, start=first_number + 1):
        tally.bytes_read += len(line)
        if line.strip():
            yield RawMessage(_without_newline(line), f"line {number}")


def _without_newline(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return line


def _json_values(
    start: bytes, source: BinaryIO, tally: Tally, noun: str, *, in_array: bool
) -> Iterator[RawMessage]:
    """JSON values one by one from a sliding buffer: the items of an array, or documents one after
    another. Each is re-encoded compactly, as `json.loads` then `json.dumps` of the whole array did."""
    buffer = _Buffer(start, source, tally)
    decoder = json.JSONDecoder()
    number = 0
    expect_value = True
    while True:
        char = buffer.next_char()
        if char == "" and not in_array:
            return
        if in_array and char == "]" and (number == 0 or not expect_value):
            buffer.position += 1
            if buffer.next_char():
                buffer.fail(noun, "extra data after the array")
            return
        if in_array and not expect_value:
            if char != ",":
                buffer.fail(noun, "expected ',' or ']'")
            buffer.position += 1
            expect_value = True
            continue
        value = buffer.decode(decoder, noun)
        number += 1
        expect_value = not in_array
        yield RawMessage(json.dumps(value).encode(), f"{noun} {number}")


class _Buffer:
    """Decoded text not consumed yet; refilled from the source a chunk at a time."""

    def __init__(self, start: bytes, source: BinaryIO, tally: Tally) -> None:
        self.source = source
        self.tally = tally
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.text = self.utf8.decode(start)
        self.position = 0
        self.ended = False

    def refill(self) -> bool:
        if self.ended:
            return False
        chunk = self.source.read(CHUNK)
        self.tally.bytes_read += len(chunk)
        self.ended = not chunk
        self.text = self.text[self.position :] + self.utf8.decode(chunk, final=self.ended)
        self.position = 0
        return not self.ended

    def next_char(self) -> str:
        """The next character that is not whitespace ("" at the end), without consuming it."""
        while True:
            while self.position < len(self.text) and self.text[self.position] in " \t\r\n":
                self.position += 1
            if self.position < len(self.text) or not self.refill():
                return self.text[self.position : self.position + 1]

    def decode(self, decoder: json.JSONDecoder, noun: str) -> Any:
        while True:
            try:
                value, end = decoder.raw_decode(self.text, self.position)
            except json.JSONDecodeError as error:
                if self.refill():
                    continue  # the value goes on in the next chunk
                self.fail(noun, str(error))
            # A value ending where the buffer ends may go on (a number cut in two): read on first.
            if end < len(self.text) or not self.refill():
                self.position = end
                return value

    def fail(self, noun: str, reason: str) -> NoReturn:
        kind = "a JSON array" if noun == "item" else "JSON documents"
        raise SettingsError(f"the input looks like {kind} but is not valid JSON: {reason}")


def place(messages: Iterable[RawMessage], parser: EntryParser, fallback: datetime) -> Iterator[Timed]:
    """Parses each message once. An unreadable one arrives with the entry before it; those before
    the first entry arrive with it (or at `fallback`, when no entry is readable for a window)."""
    waiting: list[Reject] = []
    at: datetime | None = None
    parse = parser.parse
    for message in messages:
        try:
            event = parse(message.data)
        except RejectedEntry as error:
            reject = Reject(error.code, error.reason, message.data, message.message_id, named_by_place=True)
            if at is not None:
                yield Timed(at, reject)
            elif len(waiting) < REORDER_WINDOW:
                waiting.append(reject)
            else:
                yield Timed(fallback, reject)
            continue
        at = event.timestamp
        if waiting:
            yield from (Timed(at, reject) for reject in waiting)
            waiting.clear()
        yield Timed(at, event)
    yield from (Timed(fallback, reject) for reject in waiting)


def in_time_order(timeline: Iterable[Timed], window: int = REORDER_WINDOW) -> Iterator[Timed]:
    """`timeline` sorted by time within `window` entries, newest-first input reversed first."""
    arrivals = iter(timeline)
    head = deque(islice(arrivals, window))
    in_order = _drain(head, arrivals)
    if _newest_first(head):
        in_order = _reversed(in_order)
    yield from _reordered(in_order, window)


def _newest_first(head: Iterable[Timed]) -> bool:
    """More steps back in time than forward among the first entries."""
    backward = forward = 0
    previous: datetime | None = None
    for item in head:
        if previous is not None:
            backward += item.at < previous
            forward += item.at > previous
        previous = item.at
    return backward > forward


def _drain(head: deque[Timed], rest: Iterator[Timed]) -> Iterator[Timed]:
    """`head` then `rest`, letting go of each head entry as it is taken (memory stays one window)."""
    while head:
        yield head.popleft()
    yield from rest


def _reversed(timeline: Iterator[Timed]) -> Iterator[Timed]:
    """The whole timeline backwards, spooled to a temporary file in pickled blocks."""
    with tempfile.TemporaryFile(prefix="netlog-replay-") as spool:
        offsets = []
        while block := list(islice(timeline, SPOOL_BLOCK)):
            offsets.append(spool.tell())
            pickle.dump(block, spool, protocol=pickle.HIGHEST_PROTOCOL)
        for offset in reversed(offsets):
            spool.seek(offset)
            block = pickle.load(spool)  # our own file, written just above
            yield from reversed(block)


def _reordered(timeline: Iterator[Timed], window: int) -> Iterator[Timed]:
    # The sequence number keeps entries of the same time in input order, and is never a tie.
    heap: list[tuple[datetime, int, Timed]] = []
    for sequence, item in enumerate(timeline):
        if len(heap) < window:
            heapq.heappush(heap, (item.at, sequence, item))
        else:
            yield heapq.heappushpop(heap, (item.at, sequence, item))[2]
    while heap:
        yield heapq.heappop(heap)[2]
