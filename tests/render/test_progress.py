"""`replay`'s progress line: counts and rate always; a bar and an ETA when the input's size is known."""

from __future__ import annotations

import pytest

from bot.render.progress import ReplayProgress, render_progress


@pytest.mark.parametrize(
    ("progress", "line"),
    [
        (
            ReplayProgress(read=0, stored=0, duplicates=0, rejected=0, seconds=0.0, bytes_read=0),
            "0 read · 0 stored · 0 rejected · 0/s",
        ),
        (  # stdin: no size, so no bar and no ETA
            ReplayProgress(
                read=150_000, stored=90_000, duplicates=2_000, rejected=8_000, seconds=10.0, bytes_read=9
            ),
            "150,000 read · 90,000 stored · 8,000 rejected · 10,000/s",
        ),
        (  # 1 MB of 4 MB read holds 1,000 entries: 4,000 expected, 1,000 done after 10 s -> 30 s to go
            ReplayProgress(
                read=1_000,
                stored=900,
                duplicates=0,
                rejected=100,
                seconds=10.0,
                bytes_read=1_000_000,
                bytes_total=4_000_000,
            ),
            "[######------------------]  25%  1,000 read · 900 stored · 100 rejected · 100/s · ETA 0:30",
        ),
        (
            ReplayProgress(
                read=0, stored=0, duplicates=0, rejected=0, seconds=1.0, bytes_read=0, bytes_total=10
            ),
            "[------------------------]   0%  0 read · 0 stored · 0 rejected · 0/s · ETA --:--",
        ),
        (  # hours once it takes that long
            ReplayProgress(
                read=100,
                stored=10,
                duplicates=0,
                rejected=0,
                seconds=400.0,
                bytes_read=100,
                bytes_total=1_000,
            ),
            "[------------------------]   1%  100 read · 10 stored · 0 rejected · 0/s · ETA 11:00:00",
        ),
        (
            ReplayProgress(
                read=500, stored=480, duplicates=20, rejected=0, seconds=5.0, bytes_read=50, bytes_total=50
            ),
            "[########################] 100%  500 read · 480 stored · 0 rejected · 100/s · ETA 0:00",
        ),
    ],
)
def test_render_progress(progress: ReplayProgress, line: str) -> None:
    assert render_progress(progress) == line
