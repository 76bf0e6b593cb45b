"""The benchmark's picture: throughput and p99 latency of each system, registrations and launches.

Drawn with matplotlib (installed by `make bench-deps`) as an SVG beside the run's JSON; without
matplotlib the run says so and draws nothing.
"""

from __future__ import annotations

import math
from pathlib import Path

COLOURS = {
    "Gatehouse (SQLite)": "#1f6feb",
    "Gatehouse (PostgreSQL)": "#6e40c9",
    "floor": "#8b949e",
    "ltijs": "#d29922",
}


def unavailable() -> str | None:
    """Say why no chart can be drawn here, or return None."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (make bench-deps installs it)"
    return None


def draw(panels: list[tuple[str, str, dict[str, float | None]]], title: str, path: Path) -> None:
    """Draw one bar chart per (title, unit, {system: value}) panel, side by side, as an SVG."""
    import matplotlib

    matplotlib.use("svg")
    from matplotlib import pyplot

    matplotlib.rcParams["svg.hashsalt"] = "gatehouse-bench"  # the same run draws the same file
    figure, axes = pyplot.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.8))
    for axis, (heading, unit, values) in zip(axes, panels, strict=True):
        shown = {k: v for k, v in values.items() if v is not None and not math.isnan(v)}
        names = list(shown)
        bars = axis.bar(
            range(len(names)),
            [shown[n] for n in names],
            color=[COLOURS.get(n, "#57606a") for n in names],
        )
        axis.bar_label(bars, labels=[_short(shown[n]) for n in names], fontsize=8, padding=2)
        axis.set_xticks(range(len(names)), [n.replace(" (", "\n(") for n in names], fontsize=8)
        axis.set_title(heading, fontsize=10)
        values_shown = [v for v in shown.values() if v > 0]
        if values_shown and max(values_shown) / min(values_shown) > 30:
            # ltijs's registrations take tens of seconds: on a linear axis the others vanish.
            axis.set_yscale("log")
            unit += " (log scale)"
        axis.set_ylabel(unit, fontsize=9)
        axis.spines[["top", "right"]].set_visible(False)
        axis.margins(y=0.15)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, format="svg", metadata={"Date": None})
    pyplot.close(figure)


def _short(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"
