"""Counts per day and LMS family laid out as a stacked bar chart, for an SVG drawn by a template.

Only geometry and numbers here: the markup is the `bar_chart` macro in
templates/console/_charts.html, so the chart reads without JavaScript and has a table beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from ..lti.lms import family_name

WIDTH, HEIGHT = 720, 200  # the SVG's viewBox; it scales to the width of the page
LEFT, BOTTOM, TOP = 36, 22, 8  # room for the count axis, the date labels and the top tick
# One colour per LMS family, named by its CSS class: static/style.css gives each class a colour
# in the light and in the dark scheme (--series-1 …), so the chart reads in both.
COLOURS = tuple(f"series-{n}" for n in range(1, 8))


@dataclass(frozen=True)
class Bar:
    """One family's part of one day's bar."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str


@dataclass(frozen=True)
class Chart:
    """A stacked bar chart of counts per day: its bars, axes, legend and the table behind it."""

    title: str
    days: list[str]
    families: list[tuple[str, str, int]]  # (name, colour, total)
    rows: list[tuple[str, dict[str, int], int]]  # (day, {family name: count}, day total)
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, int]] = field(default_factory=list)  # (y, count)
    labels: list[tuple[float, str]] = field(default_factory=list)  # (x, day)
    total: int = 0
    width: int = WIDTH
    height: int = HEIGHT


def day_range(today: date, days: int) -> list[str]:
    """Return the ISO dates of the last `days` days, oldest first, ending today."""
    return [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def stacked_bars(title: str, counts: list[dict], today: date, days: int) -> Chart:
    """Lay out `counts` (rows of day, family, n) as one bar per day, stacked by LMS family."""
    span = day_range(today, days)
    per_day: dict[str, dict[str, int]] = {day: {} for day in span}
    order: list[str] = []
    for row in counts:
        if row["day"] not in per_day:
            continue
        name = family_name(row["family"]) if row["family"] else "Unknown LMS"
        if name not in order:
            order.append(name)
        per_day[row["day"]][name] = per_day[row["day"]].get(name, 0) + int(row["n"])
    colours = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(sorted(order))}
    names = sorted(order)
    totals = {day: sum(found.values()) for day, found in per_day.items()}
    peak = max([*totals.values(), 1])
    top = _nice_ceiling(peak)
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    step = plot_w / days
    bars = []
    for i, day in enumerate(span):
        base = HEIGHT - BOTTOM
        for name in names:
            n = per_day[day].get(name, 0)
            if not n:
                continue
            h = plot_h * n / top
            base -= h
            bars.append(
                Bar(
                    x=round(LEFT + i * step + step * 0.15, 2),
                    y=round(base, 2),
                    width=round(step * 0.7, 2),
                    height=round(h, 2),
                    colour=colours[name],
                    label=f"{day}: {n} from {name}",
                )
            )
    ticks = [(round(HEIGHT - BOTTOM - plot_h * v / top, 2), v) for v in (0, top // 2, top)]
    every = max(1, days // 6)
    labels = [
        (round(LEFT + i * step + step / 2, 2), day[5:])
        for i, day in enumerate(span)
        if i % every == 0
    ]
    return Chart(
        title=title,
        days=span,
        families=[
            (name, colours[name], sum(per_day[d].get(name, 0) for d in span)) for name in names
        ],
        rows=[(day, per_day[day], totals[day]) for day in span if totals[day]],
        bars=bars,
        ticks=ticks,
        labels=labels,
        total=sum(totals.values()),
    )


def _nice_ceiling(peak: int) -> int:
    """Return an even round number at least `peak`, so the axis ticks are whole counts."""
    for nice in (2, 4, 6, 10, 20, 40, 60, 100, 200, 400, 600, 1000):
        if peak <= nice:
            return nice
    magnitude = 10 ** (len(str(peak)) - 1)
    return -(-peak // magnitude) * magnitude
