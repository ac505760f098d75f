"""The command line as a user meets it: `demo`, `replay`, `check` and `ingest`'s refusals.

The real CLI runs as a subprocess (`python -m bot` and the `netlog-bot` console script) where the
exit code, stdin or the process boundary matter, and in-process through `bot.cli.main` elsewhere.
The host's NETLOG_*/SLACK_*/GOOGLE_CLOUD_PROJECT never leak in, and every database lives in tmp_path.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.store import Store
from bot.cli import main
from tests.environment import HOST_SETTINGS, scrubbed
from tests.samples import SAMPLES, in_envelope
from tests.store_queries import event_count, insert_ids

CONSOLE_SCRIPT = Path(sys.executable).with_name("netlog-bot")
DEMO_CHANNELS = ("#payments-oncall", "#netlog", "#staging-noise")
HEADER = re.compile(r"^── (\S+) · \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC · (.+) ─────$", re.MULTILINE)

START = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
DENY_FLOW = "default/client-deny → default/test-service:8080/tcp  ingress  ×2"
NODE_FLOW = "default/client-deny → node/gke-demo-default-pool-e8df3298-412p:22/tcp  ingress  ×1"


def log_entries() -> list[dict[str, Any]]:
    """The samples in LogEntry envelopes, 65 s apart (oldest first); the entry timestamp wins."""
    entries = []
    for number, payload in enumerate(SAMPLES):
        at = START + timedelta(seconds=65 * number)
        entries.append(in_envelope(payload, f"sample{number}", at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "789Z"))
    return entries


def json_lines() -> str:
    lines = [json.dumps(entry) for entry in log_entries()]
    lines.insert(2, "this line is junk")
    return "\n".join(lines) + "\n"


def alerts_part(output: str) -> str:
    return output.split("── summary ─────", 1)[0]


def clean_environ(tmp_path: Path) -> dict[str, str]:
    """For a subprocess: no settings from the host, the default store in tmp_path."""
    return scrubbed(drop=HOST_SETTINGS) | {"NETLOG_DB_URL": f"sqlite:///{tmp_path / 'netlog.db'}"}


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    seconds: float
    folder: Path


@dataclass(frozen=True)
class Launch:
    command: list[str]
    folder: Path
    env: dict[str, str]
    stdin: str | None = None


def run_all(launches: dict[str, Launch]) -> dict[str, Run]:
    """Starts every process at once (each spends about a second importing), then collects them."""
    started = time.monotonic()
    processes = {
        name: subprocess.Popen(
            launch.command,
            cwd=launch.folder,
            env=clean_environ(launch.folder) | launch.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        for name, launch in launches.items()
    }
    runs = {}
    try:
        for name, process in processes.items():
            out, err = process.communicate(launches[name].stdin, timeout=60)
            runs[name] = Run(process.returncode, out, err, time.monotonic() - started, launches[name].folder)
    finally:
        for process in processes.values():
            process.kill()
    return runs


def module_bot(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot", *args]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The subprocess runs of this file, side by side: `python -m bot` and the console script."""
    assert CONSOLE_SCRIPT.exists(), f"{CONSOLE_SCRIPT} is missing: run `pip install -e .[dev]` in the venv"
    folder = {name: tmp_path_factory.mktemp(name) for name in ("demo", "script", "stdin", "bad", "configs")}
    bad_config = write_config(folder["configs"], "grouping:\n  group_wait: soon\n")
    (folder["bad"] / "entries.jsonl").write_text(json_lines(), encoding="utf-8")
    # The demo runs its embedded config, so a broken NETLOG_CONFIG must change nothing.
    broken = {"NETLOG_CONFIG": str(bad_config)}
    return run_all(
        {
            "demo": Launch(module_bot("demo"), folder["demo"], {}),
            "script": Launch([str(CONSOLE_SCRIPT), "demo", "--seed", "7"], folder["script"], broken),
            "stdin": Launch(module_bot("replay", "-"), folder["stdin"], {}, json_lines()),
            "bad": Launch(module_bot("replay", "entries.jsonl"), folder["bad"], broken),
        }
    )


def write_config(folder: Path, text: str) -> Path:
    path = folder / "netlog.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- demo ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(runs: dict[str, Run]) -> str:
    return runs["demo"].out


def test_demo_exits_zero_quickly_and_leaves_nothing_behind(runs: dict[str, Run]) -> None:
    for run in (runs["demo"], runs["script"]):
        assert run.code == 0, run.err
        assert "Traceback" not in run.err
        assert run.seconds < 15
        assert list(run.folder.iterdir()) == []


def test_demo_is_deterministic_and_the_console_script_says_the_same(runs: dict[str, Run]) -> None:
    # two processes, the same (default) seed: the same text, byte for byte
    assert runs["demo"].out == runs["script"].out


def test_demo_posts_grouped_alerts_to_the_routed_channels(demo: str) -> None:
    headers = HEADER.findall(demo)
    assert {channel for channel, _ in headers} == set(DEMO_CHANNELS)
    assert {action for _, action in headers} == {"new message", "edits message"}
    # every channel's first block opens a message, later ones edit it
    for channel in DEMO_CHANNELS:
        actions = [action for name, action in headers if name == channel]
        assert actions[0] == "new message"
        assert "edits message" in actions[1:]


@pytest.mark.parametrize(
    "phrase",
    [
        "new message",
        "edits message",
        "quiet since ",
        "at least ",
        "↳ in thread: new flow ",
        "metadata-server (169.254.169.254):80/tcp",
        ":icmp  ingress",
        "node/gke-prod-us-pool-2-31fa-q2pc → checkout/web:8080/tcp",
        "Denied connections — prod-eu / payments",
        "Denied connections — staging / default",
    ],
)
def test_demo_shows(demo: str, phrase: str) -> None:
    assert phrase in demo


def test_demo_summary_counts_duplicates_and_rejects_by_code(demo: str) -> None:
    summary = demo.split("── summary ─────", 1)[1]
    counts = re.search(
        r"(\d+) messages: (\d+) events stored, (\d+) duplicates skipped \(same insertId\), (\d+) rejected",
        summary,
    )
    assert counts, summary
    messages, stored, duplicates, rejected = (int(group) for group in counts.groups())
    assert duplicates == 2  # one deny delivered three times
    assert rejected == 4
    assert stored + duplicates + rejected == messages
    assert (
        "rejected messages kept for inspection: bad_type ×1, no_connection ×1, not_json ×1, wrong_log ×1"
        in (summary)
    )
    assert re.search(r"channels: #netlog \(\d+\), #payments-oncall \(\d+\), #staging-noise \(\d+\)", summary)


def test_demo_ends_with_its_digest_and_names_its_chart(demo: str) -> None:
    digest = demo.split("── netlog-bot digest --until 2026-01-15T11:00Z --since 1h ─────", 1)[1]
    assert "Network policy digest — Thu 15 Jan 10:00–11:00 UTC · all channels" in digest
    assert "At least 10,428 denied attempts in 8 flows (8 new flows)." in digest
    assert "prod-eu checkout/web → payments/api :8080/tcp, ingress · 10,278 attempts" in digest
    chart = Path(re.findall(r"^Chart: (.+)$", digest, re.MULTILINE)[-1])
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_demo_prints_no_raw_json(demo: str) -> None:
    assert "{" not in demo
    assert "}" not in demo
    assert '"insertId"' not in demo


# --- replay --------------------------------------------------------------------------------------


def test_replay_prints_the_alerts_and_the_summary(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = env / "entries.jsonl"
    source.write_text(json_lines(), encoding="utf-8")
    assert main(["replay", str(source)]) == 0
    out = capsys.readouterr().out
    headers = HEADER.findall(out)
    assert headers[0] == ("#netlog", "new message")
    assert {channel for channel, _ in headers} == {"#netlog"}
    assert "Denied connections — demo / default  [active]" in out
    assert f"    {DENY_FLOW}" in out  # the older format's entry folds into the same flow
    assert NODE_FLOW in out
    assert "Denied connections — demo / default  [quiet since 10:04 UTC]" in out
    assert "allow" not in alerts_part(out)  # allow entries are stored, never alerted
    assert "6 messages: 5 events stored, 0 duplicates skipped (same insertId), 1 rejected" in out
    assert "rejected messages kept for inspection: not_json ×1" in out
    assert not (env / "netlog.db").exists()  # replay uses a temporary store unless --db


def test_replay_of_one_entry_says_it_in_the_singular(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = env / "one.jsonl"
    source.write_text(json.dumps(log_entries()[0]) + "\n", encoding="utf-8")
    assert main(["replay", str(source)]) == 0
    out = capsys.readouterr().out
    assert "1 message: 1 event stored, 0 duplicates skipped (same insertId), 0 rejected" in out
    assert "Slack messages: 1 new message, 1 marked quiet" in out


def test_replay_of_gcloud_json_output_gives_the_same_alerts(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, array = env / "entries.jsonl", env / "entries.json"
    lines.write_text(json_lines(), encoding="utf-8")
    # `gcloud logging read --format=json`: one indented array, newest first
    array.write_text(json.dumps(log_entries()[::-1], indent=2), encoding="utf-8")
    assert main(["replay", str(lines)]) == 0
    from_lines = capsys.readouterr().out
    assert main(["replay", str(array)]) == 0
    from_array = capsys.readouterr().out
    assert alerts_part(from_array) == alerts_part(from_lines)
    assert HEADER.search(from_array)
    assert "5 messages: 5 events stored, 0 duplicates skipped (same insertId), 0 rejected" in from_array


def test_replay_reads_stdin(runs: dict[str, Run]) -> None:
    run = runs["stdin"]
    assert run.code == 0, run.err
    assert DENY_FLOW in run.out
    assert "6 messages: 5 events stored, 0 duplicates skipped (same insertId), 1 rejected" in run.out
    assert "Traceback" not in run.err


def test_replay_db_keeps_the_store(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = env / "entries.jsonl"
    source.write_text(json_lines(), encoding="utf-8")
    path = env / "kept.db"
    url = f"sqlite:///{path}"
    assert main(["replay", str(source), "--db", url]) == 0
    capsys.readouterr()
    assert path.exists()
    store = Store(url)
    try:
        assert event_count(store) == 5
        assert store.events.reject_count() == 1
        assert sorted(insert_ids(store)) == [f"sample{n}" for n in range(5)]
    finally:
        store.close()
    # the same file again: every entry is a duplicate, nothing is announced twice
    assert main(["replay", str(source), "--db", url]) == 0
    out = capsys.readouterr().out
    assert "0 events stored, 5 duplicates skipped (same insertId)" in out
    assert HEADER.search(out) is None


def test_replay_routes_by_the_config_file(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        env,
        "slack: {default_channel: C0123}\n"
        "routes:\n"
        '  - {match: {namespace: "def*"}, channel: "#team-default"}\n'
        "networks: {10.128.0.0/20: nodes}\n",
    )
    monkeypatch.setenv("NETLOG_CONFIG", str(config))
    source = env / "entries.jsonl"
    source.write_text(json_lines(), encoding="utf-8")
    assert main(["replay", str(source)]) == 0
    out = capsys.readouterr().out
    channels = {channel for channel, _ in HEADER.findall(out)}
    assert channels == {"#team-default", "C0123"}  # the node's deny has no namespace: default channel
    assert "channels: #team-default (3), C0123 (2)" in out or "channels: C0123 (2), #team-default (3)" in out


def test_replay_with_an_invalid_config_exits_2_naming_the_key(runs: dict[str, Run]) -> None:
    run = runs["bad"]
    assert run.code == 2
    assert run.out == ""
    assert re.match(
        r"netlog-bot: \S+/netlog\.yaml: grouping\.group_wait: 'soon' is not a duration", run.err
    ), run.err
    assert "Traceback" not in run.err


def test_replay_of_a_missing_file_exits_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "no-such-file.jsonl"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "netlog-bot: no-such-file.jsonl: no such file"


def test_replay_of_a_binary_file_exits_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "entries.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00 gzip, not text")
    assert main(["replay", "entries.jsonl.gz"]) == 2
    assert capsys.readouterr().err.strip() == "netlog-bot: entries.jsonl.gz: not UTF-8 text (byte 1)"


def test_replay_of_a_broken_json_array_exits_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "entries.json").write_text('[{"insertId": "a"},', encoding="utf-8")
    assert main(["replay", "entries.json"]) == 2
    assert "looks like a JSON array but is not valid JSON" in capsys.readouterr().err


# --- check and ingest ----------------------------------------------------------------------------


def test_check_reports_the_settings_and_the_store(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        env,
        'slack: {default_channel: C0123}\nroutes:\n  - {match: {cluster: "p*"}, channel: C1}\n'
        "access: {operators: [U0001]}\n",
    )
    monkeypatch.setenv("NETLOG_CONFIG", str(config))
    assert main(["check", "--migrate"]) == 0  # creates the store, as a start would
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"settings: OK (config file: {config}; 1 route, default channel C0123)"
    assert re.fullmatch(
        rf"store: OK \(sqlite:///{re.escape(str(env))}/netlog\.db at schema revision \d{{4}}\)", out[1]
    )
    assert out[2:] == [  # tests/test_check.py has them configured
        "slack: skipped — SLACK_BOT_TOKEN is not set (`run` needs it; `ingest` does not)",
        "slack app token: skipped — SLACK_APP_TOKEN is not set (HTTP mode: Slack posts to /slack/events; "
        "Socket Mode needs it)",
        "pubsub subscription: skipped — NETLOG_SUBSCRIPTION is not set (`run` and `ingest` need it)",
        "cloud logging: skipped — no Google Cloud project is known (GOOGLE_CLOUD_PROJECT, or a full "
        "NETLOG_SUBSCRIPTION path): `recent` and `top` answer from the store only",
        "clusters: skipped — none under `clusters:` in the config",
    ]
    assert (env / "netlog.db").exists()


def test_check_creates_nothing_unless_asked(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "store: OK (sqlite:///" in out
    assert "does not exist yet: the bot creates it at its first start" in out
    assert "access: warning — no operators are configured" in out
    assert list(env.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("garbage", "NETLOG_DB_URL 'garbage' is not a database URL"),
        ("mysql://db/netlog", "not a database this bot supports"),
        ("sqlite:////no/such/folder/netlog.db", "whose folder /no/such/folder does not exist"),
        ("postgresql+psycopg://postgres@127.0.0.1:1/test", "could not reach the database at NETLOG_DB_URL"),
    ],
)
def test_check_names_a_store_it_cannot_use_and_exits_non_zero(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    monkeypatch.setenv("NETLOG_DB_URL", url)
    assert main(["check"]) == 1
    captured = capsys.readouterr()
    assert "store: FAILED — " in captured.out
    assert says in captured.out
    assert "Traceback" not in captured.err


def test_check_without_a_config_says_built_in_defaults(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "settings: OK (config file: none, built-in defaults; 0 routes, default channel #netlog)" in out


def test_check_refuses_a_short_subscription_without_a_project(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETLOG_SUBSCRIPTION", "netlog-bot")
    assert main(["check"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "netlog-bot: NETLOG_SUBSCRIPTION is a short name, so GOOGLE_CLOUD_PROJECT must name the project"
    )
    assert "settings: OK" not in captured.out  # it is not OK
    assert list(env.iterdir()) == []  # not even the database file


def test_ingest_without_a_subscription_exits_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "netlog-bot: NETLOG_SUBSCRIPTION is not set: name the Pub/Sub subscription fed by the log sink"
    )
    assert not (env / "netlog.db").exists()


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


# --- the terminal ---------------------------------------------------------------------------------


def test_control_characters_from_log_content_are_shown_not_obeyed(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = env / "hostile.jsonl"
    entry = log_entries()[0]
    entry["jsonPayload"]["src"]["workload_name"] = "evil\x1b[2J\x07"
    source.write_text(json.dumps(entry) + "\n", encoding="utf-8")
    assert main(["replay", str(source)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "evil\\x1b[2J\\x07" in out


def test_output_cut_short_by_the_reader_ends_quietly(env: Path) -> None:
    source = env / "many.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in log_entries() * 200), encoding="utf-8")
    command = f"{sys.executable} -m bot replay {source} | head -1"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("── ")


def test_replay_db_reused_across_files_keeps_each_files_junk_and_counts_only_its_own(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{env / 'kept.db'}"
    good = json.dumps(log_entries()[0])
    for name, junk in (("a.jsonl", "junk from a"), ("b.jsonl", "junk from b")):
        (env / name).write_text(f"{good}\n{junk}\n", encoding="utf-8")
    assert main(["replay", str(env / "a.jsonl"), "--db", url]) == 0
    capsys.readouterr()
    assert main(["replay", str(env / "b.jsonl"), "--db", url]) == 0
    out = capsys.readouterr().out
    assert "rejected messages kept for inspection: not_json ×1" in out  # b's, not a's as well
    store = Store(url)
    try:
        kept = sorted(reject.raw for reject in store.events.rejects())
    finally:
        store.close()
    assert kept == [b"junk from a", b"junk from b"]  # line 2 of b is not line 2 of a
