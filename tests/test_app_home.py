"""The App Home tab. Through Slack's front door: a signed `app_home_opened` event sent over HTTP to
`netlog-bot run` (a subprocess) makes it publish, for that user, a view showing each cluster's
NetworkLogging setting from the fake Kubernetes API server, its alert groups, the mutes and the top
namespaces of the last 24 h, from a store seeded through the real pipeline; a Kubernetes failure
becomes a sentence in the tab. Then the renderer alone (Slack's view limits, escaping) and the
handler (failures logged, never raised)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot.adapters.store import Store
from bot.core.events import NetworkNames
from bot.core.grouping import Group, Grouper, GroupingPolicy
from bot.core.history import Top, TopRow
from bot.core.mutes import Mute
from bot.core.routing import RoutingTable
from bot.pipeline import GroupingWorker, entry_parser, store_messages
from bot.render.blocks import TRUNCATED
from bot.render.home import ClusterHome, render_home
from handlers import home
from tests.bot_process import Bot, until
from tests.fakes.kube import FakeKube
from tests.fakes.slack import FakeSlack, block_errors
from tests.logentries import raw_message

USER = "U0VIEWER"
CONFIG = """
slack: {default_channel: C0WEB}
clusters: {prod: {context: prod}}
"""


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        assert fake.networklogging is not None
        fake.networklogging["spec"]["cluster"]["deny"] = {"log": True, "delegate": False}
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel("C0WEB", "web")
        yield fake


def seed(url: str, now: datetime) -> None:
    """Denies stored and grouped as the bot does, and a mute, before the bot starts."""
    store = Store(url)
    try:
        store.migrate()
        messages = [
            raw_message(at=now - timedelta(minutes=10), namespace="payments", count=30),
            raw_message(at=now - timedelta(minutes=20), namespace="shop", count=10),
            raw_message(at=now - timedelta(hours=30), namespace="ancient", count=99),  # past 24 h
        ]
        store_messages(store, messages, entry_parser(NetworkNames()), now)
        GroupingWorker(store, Grouper(GroupingPolicy(), RoutingTable((), "C0WEB"))).catch_up(now)
        since, until_ = now - timedelta(minutes=1), now + timedelta(hours=2)
        store.mutes.add(Mute(0, (("namespace", "legacy-*"),), since, until_, "U0OP"))
    finally:
        store.close()


@pytest.fixture
def config() -> str:
    return CONFIG


@pytest.fixture
def bot(
    tmp_path: Path, slack: FakeSlack, kube: FakeKube, subscription: tuple[str, str], config: str
) -> Iterator[Bot]:
    running = Bot(tmp_path, slack, subscription[1], config)
    running.env["KUBECONFIG"] = str(kube.write_kubeconfig(tmp_path / "kubeconfig", ["prod"]))
    seed(running.env["NETLOG_DB_URL"], datetime.now(UTC))
    running.start()
    yield running
    running.kill()


def open_home(bot: Bot, user: str, event_id: str) -> int:
    event = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"}
    body = {
        "token": "legacy",
        "team_id": "T0TEAM",
        "api_app_id": "A0NETLOG",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": event | {"event_ts": f"{time.time():.6f}"},
    }
    return bot.post_signed(json.dumps(body).encode())


def published(slack: FakeSlack, bot: Bot, count: int) -> str:
    """The blocks of the user's Home tab once `count` views were published, as JSON text."""
    until(lambda: len(slack.calls_to("views.publish")) >= count, 20, "views.publish", bot)
    call = slack.calls_to("views.publish")[count - 1]
    assert call.response["ok"], call.response
    view = slack.home_view(USER)
    assert view is not None
    return json.dumps(view["blocks"], ensure_ascii=False)


def test_opening_the_home_tab_publishes_settings_groups_mutes_and_top_namespaces(
    bot: Bot, slack: FakeSlack, kube: FakeKube
) -> None:
    assert open_home(bot, USER, "Ev0HOME1") == 200
    shown = published(slack, bot, 1)
    assert "deny `deny: log=true, delegate=false`: Every denied connection is logged." in shown
    assert "*Active alert groups (3)*" in shown  # the old deny arrived just now: its group is open
    assert "`namespace=payments` · at least 30 denied attempts" in shown
    assert "#1 `namespace=legacy-*` by <@U0OP>" in shown
    assert "*Top namespaces, last 24 h* (at least 40 denied attempts)" in shown
    assert "`payments` · 30 attempts (75%)" in shown
    assert "`shop` · 10 attempts (25%)" in shown
    assert "`ancient`" not in shown.split("Top namespaces")[1]

    kube.fail_next(403, 1)  # refreshed when opened: the next read fails, and says so
    assert open_home(bot, USER, "Ev0HOME2") == 200
    shown = published(slack, bot, 2)
    assert ":warning: The bot may not `get` `networkloggings`" in shown
    assert "`payments` · 30 attempts" in shown


OPERATOR = "U0OPERATOR"
WITHHELD = "_For those who may run `/netlog {}`: operators (`access.permissions`)._"
#: What each part shows when the viewer may see it (the seeded store and cluster).
PARTS = {
    "status": "deny `deny: log=true, delegate=false`",
    "recent": "`namespace=payments` · at least 30 denied attempts",
    "mutes": "#1 `namespace=legacy-*` by <@U0OP>",
    "top": "`payments` · 30 attempts (75%)",
}


def restricted(command: str) -> str:
    return f"{CONFIG}access: {{operators: [{OPERATOR}], permissions: {{{command}: operators}}}}\n"


@pytest.mark.parametrize(
    ("config", "command"), [(restricted(command), command) for command in PARTS], ids=list(PARTS)
)
def test_each_part_is_shown_to_those_who_may_run_its_command(
    bot: Bot, slack: FakeSlack, kube: FakeKube, command: str
) -> None:
    """One command for operators only: anyone else sees every other part, and in that part's place
    which command shows it; what it would show is not read (the cluster is not asked for `status`)."""
    settings_reads = len(kube.requests_to("networkloggings"))
    assert open_home(bot, USER, "Ev0HOME1") == 200
    shown = published(slack, bot, 1)
    for part, text in PARTS.items():
        assert (text in shown) == (part != command), part
    assert shown.count(WITHHELD.format(command)) == 1
    assert "access.permissions" not in shown.replace(WITHHELD.format(command), "")
    if command == "status":
        assert len(kube.requests_to("networkloggings")) == settings_reads

    assert open_home(bot, OPERATOR, "Ev0HOME2") == 200
    until(lambda: slack.home_view(OPERATOR) is not None, 20, "the operator's view", bot)
    mine = json.dumps(slack.home_view(OPERATOR), ensure_ascii=False)
    assert "access.permissions" not in mine
    assert all(text in mine for text in PARTS.values())


NOW = datetime(2026, 11, 3, 10, 25, tzinfo=UTC)


def cluster(name: str, *, groups: int = 0, mutes: int = 0) -> ClusterHome:
    labels = (("cluster", name), ("namespace", "<!channel>*bold*"))
    made = [Group(f"k{i}", "C0WEB", labels, NOW, NOW, NOW, NOW, total=i + 1) for i in range(groups)]
    hour = timedelta(hours=1)
    muted = [Mute(i, (("namespace", "x" * 60),), NOW, NOW + hour, "U0OP", "r") for i in range(mutes)]
    top = Top("namespace", (TopRow("payments", 3, None),), 0, 3, 0)
    return ClusterHome(name, "The API server of prod did not answer <@U0X>", made, muted, top)


def test_the_view_keeps_slacks_limits_with_visible_markers() -> None:
    view = render_home([cluster(f"c{i:02}", groups=200, mutes=100) for i in range(40)], NOW)
    blocks = view["blocks"]
    assert view["type"] == "home"
    assert block_errors(blocks, most=100) == []
    assert "_24 more cluster(s) not shown:_ `c16`" in blocks[-1]["text"]["text"]
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert any("_+" in t and "more_" in t for t in texts)
    assert all(len(t) <= 3000 for t in texts)
    assert TRUNCATED not in json.dumps(blocks)  # whole lines dropped and counted, none cut


def test_dynamic_text_is_escaped_and_quoted() -> None:
    shown = json.dumps(render_home([cluster("prod", groups=1)], NOW)["blocks"])
    assert "<!channel>" not in shown
    assert "<@U0X>" not in shown
    assert "`namespace=&lt;!channel&gt;*bold*`" in shown
    assert "&lt;@U0X&gt;" in shown


def test_no_clusters_says_where_to_configure_them() -> None:
    assert "`clusters:` in the config" in json.dumps(render_home([], NOW)["blocks"])


class BrokenHome:
    """Stands in for the `Home` service whose store just went away."""

    def view(self, user: str) -> Any:
        raise ConnectionError("database went away")


def test_a_failure_is_logged_not_raised_and_the_messages_tab_is_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    published: list[str] = []
    client = SimpleNamespace(views_publish=lambda **kwargs: published.append(kwargs["user_id"]))
    home.opened(BrokenHome(), {"user": USER, "tab": "home"}, client)  # type: ignore[arg-type]
    home.opened(BrokenHome(), {"user": USER, "tab": "messages"}, client)  # type: ignore[arg-type]
    assert published == []
    assert "could not publish the Home tab for U0VIEWER" in caplog.text
    assert "database went away" in caplog.text
