"""The digest's chart: denied attempts per hour, stacked by the top namespaces, with the previous
period as a line, drawn by matplotlib's Agg backend (no display) into PNG bytes.

matplotlib is imported when a chart is drawn, not with this module: it takes a second to load,
and most commands never draw."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from bot.core.digest import Series

#: Inches at 100 dpi: 1,000 × 450 pixels, readable in a Slack thread and small (~40 kB).
SIZE = (10.0, 4.5)
DPI = 100


def render_chart(series: Series, title: str, zone: ZoneInfo | None = None) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    zone = zone or ZoneInfo("UTC")
    hours = [hour.astimezone(zone) for hour in series.hours]
    slots = list(range(len(hours)))  # one bar per hour; labelled with local times below
    figure = Figure(figsize=SIZE, dpi=DPI)
    axes = figure.add_subplot()
    bottom = [0] * len(hours)
    for name, values in series.stacks:
        axes.bar(slots, values, width=0.85, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    if any(series.previous):
        axes.plot(
            slots, series.previous, color="black", linewidth=1.2, linestyle="--", label="previous period"
        )
    step = max(1, len(hours) // 12)
    axes.set_xticks(slots[::step], [f"{hour:%H:%M}" for hour in hours[::step]])
    if hours:
        axes.set_xlabel(f"hour starting ({hours[0].tzname()}), from {hours[0]:%a %d %b}")
    axes.set_title(title)
    axes.set_ylabel("denied attempts (at least)")
    axes.set_ylim(bottom=0)
    axes.grid(axis="y", alpha=0.3)
    if series.stacks or any(series.previous):
        axes.legend(loc="upper left", fontsize="small", ncols=2)
    else:
        axes.text(0.5, 0.5, "no denied attempts", ha="center", va="center", transform=axes.transAxes)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
