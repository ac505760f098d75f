"""`netlog-bot rejects` as an operator runs it: the refused messages newest first with their reason
and a safe preview of their bytes, narrowed by `--since` and `--code`; bad words get a sentence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.store import Store
from bot.cli import main
from bot.core.events import NetworkNames, RawMessage
from bot.pipeline import entry_parser, store_messages
from tests.logentries import encoded

NOW = datetime.now(UTC)


@pytest.fixture
def rejected(env: Path) -> Path:
    store = Store(f"sqlite:///{env / 'netlog.db'}")
    store.migrate()
    junk = [
        RawMessage(b"not json\x1b[31m\x00" + b"x" * 300, "m1"),
        RawMessage(encoded().replace(b"policy-action", b"syslog"), "m2"),
        RawMessage(b"\xff\xfe", "m3"),
    ]
    store_messages(store, junk[:1], entry_parser(NetworkNames()), NOW - timedelta(hours=3))
    store_messages(store, junk[1:], entry_parser(NetworkNames()), NOW - timedelta(minutes=5))
    store.close()
    return env


def test_rejects_lists_what_was_refused_with_a_safe_preview(
    rejected: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rejects", "--since", "4h"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 messages rejected in the last 4h, newest first:")
    assert out.index("message m3") < out.index("message m2") < out.index("message m1")
    assert "wrong_log message m2" in out
    assert "is not a policy-action log" in out
    assert "not json\\x1b[31m\\x00xxx" in out  # control characters escaped, never sent to the terminal
    assert "… (314 bytes)" in out
    assert "\\xff\\xfe" in out


def test_since_and_code_narrow_the_list(rejected: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rejects"]) == 0
    assert capsys.readouterr().out.startswith("2 messages rejected in the last 1h")
    assert main(["rejects", "--since", "4h", "--code", "wrong_log"]) == 0
    assert capsys.readouterr().out.startswith("1 message rejected of code wrong_log in the last 4h")
    assert main(["rejects", "--code", "bad_type"]) == 0
    assert capsys.readouterr().out == "No messages rejected of code bad_type in the last 1h.\n"


def test_bad_words_and_a_missing_store_get_a_sentence(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rejects"]) == 2
    assert "NETLOG_DB_URL names" in capsys.readouterr().err
    assert main(["rejects", "--since", "lately"]) == 2
    assert "--since: 'lately' is not a duration" in capsys.readouterr().err
