"""`netlog-bot digest` as an operator runs it: the digests of the configured channels printed from
the store at NETLOG_DB_URL, the chart written as a PNG when asked, and a sentence (exit 2) for
bad words or a store that is not there. The demo ends with its digest and names its chart."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.store import Store
from bot.cli import main
from bot.core.events import NetworkNames
from bot.core.grouping import Grouper, GroupingPolicy
from bot.core.routing import RoutingTable
from bot.pipeline import GroupingWorker, entry_parser, store_messages
from tests.logentries import raw_message

DAY = datetime(2026, 5, 4, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


@pytest.fixture
def filled(env: Path) -> Path:
    store = Store(f"sqlite:///{env / 'netlog.db'}")
    store.migrate()
    messages = [raw_message(at=DAY + timedelta(hours=h), count=h + 1) for h in range(6)]
    messages.append(raw_message(at=DAY + timedelta(hours=2), source="cron", source_namespace="batch"))
    store_messages(store, messages, entry_parser(NetworkNames()), DAY + timedelta(hours=7))
    GroupingWorker(store, Grouper(GroupingPolicy(), RoutingTable((), "C0NETLOG"))).catch_up(
        DAY + timedelta(hours=7)
    )
    store.close()
    return env


def test_digest_prints_the_digest_and_writes_the_chart(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = filled / "digest.png"
    code = main(["digest", "--until", "2026-05-04T08:30Z", "--since", "8h", "--chart", str(chart)])
    out = capsys.readouterr().out
    assert code == 0
    assert "Network policy digest — Mon 04 May 00:00–08:00 UTC · all channels" in out
    assert "At least 22 denied attempts in 2 flows (2 new flows)." in out
    assert "checkout/web → payments/api :443/tcp, ingress · 21 attempts" in out
    assert "No entries at all in 2 hours: 06:00–08:00 UTC." in out
    assert f"Chart: {chart}" in out
    width, height = png_size(chart.read_bytes())
    assert (width, height) == (1000, 450)
    assert 5_000 < chart.stat().st_size < 200_000


def test_digest_of_one_channel_and_of_each_configured_one(
    filled: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = filled / "netlog.yaml"
    config.write_text(
        "slack: {default_channel: C0NETLOG}\n"
        "routes: [{match: {src_namespace: batch}, channel: C0BATCH}]\n"
        "digest: {channels: [C0BATCH, C0NETLOG], timezone: Europe/Berlin}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("NETLOG_CONFIG", str(config))
    assert main(["digest", "--until", "2026-05-04T08:00Z", "--since", "8h", "--chart", "c.png"]) == 0
    out = capsys.readouterr().out
    assert "02:00–10:00 CEST · #C0BATCH" in out
    assert "· #C0NETLOG" in out
    assert "At least 1 denied attempt in 1 flow (1 new flow)." in out
    assert (filled / "c-C0BATCH.png").exists()
    assert (filled / "c-C0NETLOG.png").exists()
    assert main(["digest", "--until", "2026-05-04T08:00Z", "--since", "8h", "--channel", "C0BATCH"]) == 0
    assert "#C0NETLOG" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (["--since", "yesterday"], "'yesterday' is not a duration"),
        (["--since", "10m"], "a digest covers at least one hour"),
        (["--until", "tomorrow"], "--until 'tomorrow' is not an ISO 8601 time"),
    ],
)
def test_bad_words_get_a_sentence(
    filled: Path, capsys: pytest.CaptureFixture[str], words: list[str], says: str
) -> None:
    assert main(["digest", *words]) == 2
    err = capsys.readouterr().err
    assert says in err
    assert "Traceback" not in err


def test_a_missing_store_is_named(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["digest"]) == 2
    assert "NETLOG_DB_URL names" in capsys.readouterr().err
    assert not (env / "netlog.db").exists()
