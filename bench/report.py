"""How every benchmark stage prints a figure: next to its baseline from the same run, and the ratio.

A row reads: stage, what was measured, the figure, the baseline (named), and figure/baseline for
rates (higher is better) — machines are noisy, so compare ratios between commits, not seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    stage: str
    figure: float
    unit: str
    baseline_name: str
    baseline: float | None = None

    @property
    def ratio(self) -> float | None:
        return self.figure / self.baseline if self.baseline else None


def render(row: Row) -> str:
    baseline = row.baseline_name
    if row.baseline:
        baseline = f"{row.baseline:>12,.0f} {row.unit}  {baseline}"
    ratio = f"{row.ratio:6.3f}x" if row.ratio is not None else "      -"
    return f"{row.stage:<34} {row.figure:>12,.0f} {row.unit:<9} {ratio}   {baseline}"


def header() -> str:
    return f"{'stage':<34} {'figure':>12} {'unit':<9} {'ratio':>7}   baseline (same run)"
