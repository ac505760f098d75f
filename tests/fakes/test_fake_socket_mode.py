"""The fake Socket Mode endpoint speaks RFC 6455 the way a strict server does (checked with a raw
socket, so the parts slack_sdk never exercises are covered too), and FakeSlack hands out its URL
only for the app-level token."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack import FakeSlack
from tests.fakes.socket_mode import (
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    FakeSocketMode,
    Frame,
    accept_key,
    encode_frame,
    read_frame,
)

MASK = b"\x01\x02\x03\x04"


@pytest.fixture
def fake() -> Iterator[FakeSocketMode]:
    with FakeSocketMode() as server:
        yield server


class RawClient:
    def __init__(self, url: str, key: str | None = None, version: str = "13") -> None:
        parts = urlsplit(url)
        self.key = key or base64.b64encode(os.urandom(16)).decode()
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        self.stream = self.sock.makefile("rb")
        request = [
            f"GET {parts.path}?{parts.query} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self.key}",
            f"Sec-WebSocket-Version: {version}",
        ]
        self.sock.sendall("\r\n".join([*request, "", ""]).encode())
        lines = []
        while (line := self.stream.readline().decode().strip()) != "":
            lines.append(line)
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}

    def send(self, opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = MASK) -> None:
        self.sock.sendall(encode_frame(opcode, payload, fin=fin, mask=mask))

    def frame(self) -> Frame:
        return read_frame(self.stream.read)

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def test_handshake_hello_fragments_ping_and_ack(fake: FakeSocketMode) -> None:
    client = RawClient(fake.issue_url())
    try:
        assert client.status == 101
        assert client.headers["sec-websocket-accept"] == accept_key(client.key)
        hello = json.loads(client.frame().payload)
        assert (hello["type"], hello["num_connections"]) == ("hello", 1)

        envelope = fake.send_envelope("slash_commands", {"command": "/netlog", "text": "help"})
        sent = json.loads(client.frame().payload)
        assert sent == {
            "envelope_id": envelope,
            "type": "slash_commands",
            "payload": {"command": "/netlog", "text": "help"},
            "accepts_response_payload": True,
        }
        ack = json.dumps({"envelope_id": envelope, "payload": {"text": "ok"}}).encode()
        client.send(TEXT, ack[:10], fin=False)
        client.send(PING, b"between fragments")  # control frames may interleave (RFC 6455 5.4)
        client.send(CONTINUATION, ack[10:20], fin=False)
        assert not fake.acked(envelope)
        client.send(CONTINUATION, ack[20:])
        assert client.frame() == Frame(True, PONG, b"between fragments", False)
        assert fake.ack(envelope)[1] == {"envelope_id": envelope, "payload": {"text": "ok"}}

        client.send(CLOSE, struct.pack("!H", 1000))
        assert client.frame() == Frame(True, CLOSE, struct.pack("!H", 1000), False)
        connection = fake.connections[0]
        assert (connection.ending, connection.close_code, connection.pings) == ("close", 1000, 1)
    finally:
        client.close()


def test_unmasked_client_frames_are_a_protocol_error(fake: FakeSocketMode) -> None:
    client = RawClient(fake.issue_url())
    try:
        client.frame()  # hello
        client.send(TEXT, b"{}", mask=None)
        assert client.frame() == Frame(True, CLOSE, struct.pack("!H", 1002), False)
        fake.wait(lambda: not fake.connections[0].open, 5, "end of the connection")
        assert (fake.connections[0].ending or "").startswith("protocol error: client frames must be masked")
    finally:
        client.close()


def handshake_status(url: str, key: str | None = None, version: str = "13") -> int:
    client = RawClient(url, key, version)
    client.close()
    return client.status


def test_a_ticket_is_good_for_one_connection_and_the_handshake_is_checked(fake: FakeSocketMode) -> None:
    url = fake.issue_url()
    assert handshake_status(url, version="8") == 400
    assert handshake_status(url, key="short") == 400
    assert handshake_status(url) == 101
    assert handshake_status(url) == 401


def test_apps_connections_open_takes_the_app_token_only(fake: FakeSocketMode) -> None:
    with FakeSlack() as slack:
        slack.socket_mode = fake
        client = WebClient(base_url=slack.base_url, retry_handlers=[])
        url = client.apps_connections_open(app_token=slack.app_token)["url"]
        assert url.startswith(fake.ws_root + "/link/?ticket=")
        for token, error in [(slack.token, "not_allowed_token_type"), ("xapp-1-other", "invalid_auth")]:
            with pytest.raises(SlackApiError) as refused:
                client.apps_connections_open(app_token=token)
            assert refused.value.response["error"] == error
        with pytest.raises(SlackApiError) as wrong_way:
            client.chat_postMessage(token=slack.app_token, channel="C1", text="hi")
        assert wrong_way.value.response["error"] == "not_allowed_token_type"
