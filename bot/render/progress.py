"""`replay`'s progress line: counts, rate and, when the input's size is known, a bar and an ETA.

Pure: the command measures (entries, bytes, seconds) and draws the line on a terminal."""

from __future__ import annotations

from dataclasses import dataclass

BAR_WIDTH = 24


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    read: int
    """Entries read from the input (ahead of the others by the reorder window)."""
    stored: int
    duplicates: int
    rejected: int
    seconds: float
    bytes_read: int
    bytes_total: int | None = None
    """None when the input's size is unknown (stdin): no bar, no ETA."""

    @property
    def done(self) -> int:
        """Entries through the store: stored, skipped as duplicates, or rejected."""
        return self.stored + self.duplicates + self.rejected


def render_progress(progress: ReplayProgress) -> str:
    """`[#####-----]  42%  120,000 read · 98,000 stored · 12 rejected · 9,800/s · ETA 1:05`."""
    rate = progress.done / progress.seconds if progress.seconds > 0 else 0.0
    parts = [
        f"{progress.read:,} read",
        f"{progress.stored:,} stored",
        f"{progress.rejected:,} rejected",
        f"{rate:,.0f}/s",
    ]
    fraction = _fraction(progress)
    if fraction is None:
        return " · ".join(parts)
    estimate = _remaining_seconds(progress, fraction, rate)
    parts.append(f"ETA {_clock(estimate)}" if estimate is not None else "ETA --:--")
    filled = round(fraction * BAR_WIDTH)
    bar = f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {fraction:4.0%}"
    return f"{bar}  " + " · ".join(parts)


def _fraction(progress: ReplayProgress) -> float | None:
    if not progress.bytes_total:
        return None
    # Done entries over the entries the whole file should hold, at the bytes per entry read so far.
    if progress.read == 0 or progress.bytes_read == 0:
        return 0.0
    expected = progress.read * progress.bytes_total / progress.bytes_read
    return min(progress.done / expected, 1.0)


def _remaining_seconds(progress: ReplayProgress, fraction: float, rate: float) -> float | None:
    if fraction <= 0 or rate <= 0:
        return None
    return progress.seconds * (1 - fraction) / fraction


def _clock(seconds: float) -> str:
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"
