"""A fake of Slack's Socket Mode endpoint: a real WebSocket server (RFC 6455, server side) on loopback.

FakeSlack hands out its URL from `apps.connections.open`, as Slack hands out `wss://` URLs, so the
real slack_sdk client (and so Bolt's SocketModeHandler) connects to it over a real socket: nothing
is patched. It is faithful where a client can tell the difference: the URL carries a one-time
ticket; the handshake checks the Upgrade headers and answers `Sec-WebSocket-Accept`; client frames
must be masked (close 1002 otherwise), fragmented messages are reassembled with control frames
allowed between the fragments, pings get pongs with the same payload, a close frame is echoed;
each connection starts with Slack's `hello`. Envelopes (`slash_commands`, `interactive`, ...) are
sent with `send_envelope`, and the client's acks are collected by `envelope_id`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.server import LoopbackServer

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
PROTOCOL_ERROR, UNSUPPORTED_DATA = 1002, 1003


class ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes
    masked: bool


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None) -> bytes:
    """One frame; servers send them unmasked, clients with a 4-byte `mask`."""
    head = bytes([(0x80 if fin else 0) | opcode])
    bit, size = (0x80 if mask else 0), len(payload)
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += struct.pack("!BH", bit | 126, size)
    else:
        head += struct.pack("!BQ", bit | 127, size)
    if mask is None:
        return head + payload
    return head + mask + _masked(payload, mask)


def _masked(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 masking; applying it twice gives the payload back."""
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_frame(read: Callable[[int], bytes]) -> Frame:
    """The next frame from `read(n)` (which returns fewer bytes only at EOF), unmasked."""

    def exactly(size: int) -> bytes:
        data = read(size)
        if len(data) < size:
            raise EOFError
        return data

    first, second = exactly(2)
    if first & 0x70:
        raise ProtocolError(PROTOCOL_ERROR, "RSV bits set without a negotiated extension")
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", exactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", exactly(8))[0]
    mask = exactly(4) if second & 0x80 else b""
    payload = exactly(size)
    if mask:
        payload = _masked(payload, mask)
    return Frame(bool(first & 0x80), first & 0x0F, payload, bool(mask))


@dataclass
class Connection:
    """One WebSocket session, as the server saw it."""

    sock: socket.socket
    pings: int = 0
    #: "close" (the client sent a close frame), "eof" (it hung up without one), "server", or
    #: "protocol error: ..."; None while open.
    ending: str | None = None
    close_code: int | None = None
    send_lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, opcode: int, payload: bytes) -> None:
        with self.send_lock:
            self.sock.sendall(encode_frame(opcode, payload))

    @property
    def open(self) -> bool:
        return self.ending is None


class FakeSocketMode(LoopbackServer):
    def __init__(self, app_id: str = "A0NETLOG") -> None:
        super().__init__(_handler_for(self))
        self.app_id = app_id
        self.connections: list[Connection] = []
        self._tickets: set[str] = set()
        self._acks: dict[str, tuple[float, dict[str, Any]]] = {}
        self._sent: dict[str, float] = {}
        self._changed = threading.Condition()

    def issue_url(self) -> str:
        """A fresh URL for `apps.connections.open`; its ticket is good for one connection."""
        ticket = uuid.uuid4().hex
        with self._changed:
            self._tickets.add(ticket)
        return f"{self.ws_root}/link/?ticket={ticket}&app_id={self.app_id}"

    @property
    def ws_root(self) -> str:
        """`ws://127.0.0.1:PORT`, once started."""
        return self.root.replace("http://", "ws://", 1)

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        with self._changed:
            if not self._changed.wait_for(condition, timeout):
                raise TimeoutError(f"socket mode: no {what} within {timeout} s")

    def connection(self, timeout: float = 10.0) -> Connection:
        """The newest open connection, once there is one."""
        self.wait(lambda: any(c.open for c in self.connections), timeout, "open connection")
        with self._changed:
            return [c for c in self.connections if c.open][-1]

    def send_envelope(
        self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool = True
    ) -> str:
        """Sends a request over the newest open connection, as Slack does; returns its envelope_id."""
        envelope_id = str(uuid.uuid4())
        message = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        target = self.connection(timeout=0)
        with self._changed:
            self._sent[envelope_id] = time.monotonic()
        target.send(TEXT, json.dumps(message).encode())
        return envelope_id

    def ack(self, envelope_id: str, timeout: float = 3.0) -> tuple[float, dict[str, Any]]:
        """(seconds from sending the envelope to its ack, the ack) once the client acks it."""
        self.wait(lambda: envelope_id in self._acks, timeout, f"ack for envelope {envelope_id}")
        with self._changed:
            at, message = self._acks[envelope_id]
            return at - self._sent[envelope_id], message

    def acked(self, envelope_id: str) -> bool:
        with self._changed:
            return envelope_id in self._acks

    def request_refresh(self) -> None:
        """Slack's notice that it is about to recycle this connection: clients reconnect by a new URL."""
        message = {"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "fake"}}
        self.connection(timeout=0).send(TEXT, json.dumps(message).encode())

    def stop(self) -> None:
        with self._changed:
            live = [c for c in self.connections if c.open]
        for connection in live:
            self._end(connection, "server", 1001)
        super().stop()

    # -- the server side
    def take_ticket(self, path: str) -> bool:
        tickets = parse_qs(urlsplit(path).query).get("ticket", [])
        with self._changed:
            if not tickets or tickets[0] not in self._tickets:
                return False
            self._tickets.discard(tickets[0])
            return True

    def serve(self, connection: Connection, read: Callable[[int], bytes]) -> None:
        with self._changed:
            self.connections.append(connection)
            self._changed.notify_all()
            live = sum(c.open for c in self.connections)
        hello = {
            "type": "hello",
            "num_connections": live,
            "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }
        try:
            connection.send(TEXT, json.dumps(hello).encode())
            self._messages(connection, read)
        except ProtocolError as error:
            self._end(connection, f"protocol error: {error}", error.code)
        except (EOFError, OSError):
            self._end(connection, "eof")

    def _messages(self, connection: Connection, read: Callable[[int], bytes]) -> None:
        parts: list[bytes] = []
        while connection.open:
            frame = read_frame(read)
            if not frame.masked:
                raise ProtocolError(PROTOCOL_ERROR, "client frames must be masked")  # RFC 6455 5.1
            if frame.opcode >= CLOSE and (not frame.fin or len(frame.payload) > 125):
                raise ProtocolError(PROTOCOL_ERROR, "control frames cannot be fragmented or long")
            if frame.opcode == PING:
                connection.send(PONG, frame.payload)
                with self._changed:
                    connection.pings += 1
                    self._changed.notify_all()
            elif frame.opcode == CLOSE:
                code = struct.unpack("!H", frame.payload[:2])[0] if len(frame.payload) >= 2 else None
                self._end(connection, "close", code)
            elif frame.opcode == BINARY:
                raise ProtocolError(UNSUPPORTED_DATA, "Socket Mode speaks JSON text only")
            elif (frame.opcode == TEXT and not parts) or (frame.opcode == CONTINUATION and parts):
                parts.append(frame.payload)
                if frame.fin:
                    self._receive(connection, b"".join(parts))
                    parts = []
            elif frame.opcode != PONG:
                raise ProtocolError(PROTOCOL_ERROR, f"unexpected opcode {frame.opcode:#x}")

    def _receive(self, connection: Connection, data: bytes) -> None:
        try:
            message = json.loads(data.decode())
        except ValueError as error:  # UnicodeDecodeError included
            raise ProtocolError(UNSUPPORTED_DATA, f"not JSON text: {error}") from None
        with self._changed:
            if isinstance(message, dict) and message.get("envelope_id") in self._sent:
                self._acks.setdefault(message["envelope_id"], (time.monotonic(), message))
            self._changed.notify_all()

    def _end(self, connection: Connection, ending: str, code: int | None = None) -> None:
        with self._changed:
            if not connection.open:
                return
            connection.ending, connection.close_code = ending, code
            self._changed.notify_all()
        if ending != "eof":  # a close frame: the client's echoed, or ours first
            with contextlib.suppress(OSError):
                connection.send(CLOSE, struct.pack("!H", code or 1000))
        with contextlib.suppress(OSError):
            connection.sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread


def _handler_for(fake: FakeSocketMode) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # a WebSocket handshake is an HTTP/1.1 Upgrade

        def do_GET(self) -> None:
            self.close_connection = True
            key = self.headers.get("Sec-WebSocket-Key", "")
            upgrade = "upgrade" in self.headers.get("Connection", "").lower()
            if not (upgrade and self.headers.get("Upgrade", "").lower() == "websocket"):
                self.send_error(400, "not a WebSocket upgrade")
            elif self.headers.get("Sec-WebSocket-Version") != "13" or not _valid_key(key):
                self.send_error(400, "bad Sec-WebSocket-Version or Sec-WebSocket-Key")
            elif not self.path.startswith("/link/") or not fake.take_ticket(self.path):
                self.send_error(401, "unknown or used ticket: call apps.connections.open again")
            else:
                self.send_response(101, "Switching Protocols")
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept_key(key))
                self.end_headers()
                self.wfile.flush()
                fake.serve(Connection(self.connection), self.rfile.read)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False
