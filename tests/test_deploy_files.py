"""The deploy files as Kubernetes and App Engine read them: the image runs as a numeric user (so
`runAsNonRoot` can check it) and says the shutdown figure the bot keeps. (`make lint` runs hadolint
on the Dockerfile.)"""

from __future__ import annotations

import re
from pathlib import Path

from bot.app import SHUTDOWN_BUDGET

ROOT = Path(__file__).resolve().parent.parent


def final_stage() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8").rsplit("\nFROM ", 1)[1]


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    (user,) = re.findall(r"^USER (\S+)$", final_stage(), re.MULTILINE)
    assert user.isdigit()
    assert int(user) != 0


def test_the_shutdown_figure_is_the_bots_everywhere() -> None:
    seconds = f"{SHUTDOWN_BUDGET:.0f} s"
    assert f"exits within {seconds}" in final_stage()
    assert f"SIGTERM drains within {seconds}." in (ROOT / "README.md").read_text(encoding="utf-8")
