"""The overview's chart: deliveries and failures per minute over the last hours, as shapes for a small
inline SVG drawn on the server (no script, nothing fetched: it is there when the page is).

Deliveries rise above the middle line, failures hang below it, one column per minute; both halves share
one scale so their heights compare."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

WIDTH, HEIGHT, LEFT, BOTTOM_MARGIN = 900, 220, 44, 22


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Chart:
    hours: int
    delivered: list
    failed: list
    ticks: list  # (x, label)
    scale: list  # (y, label)
    middle: float
    total_delivered: int
    total_failed: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT


def _nice_top(value: int) -> int:
    if value <= 5:
        return 5
    magnitude = 10 ** int(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def per_minute_chart(counts: dict[int, tuple[int, int]], now: float, hours: int) -> Chart:
    """``counts``: Unix minute -> (deliveries, failures), as ``Ledger.per_minute`` gives them."""
    last = math.floor(now / 60)
    minutes = [last - i for i in range(hours * 60 - 1, -1, -1)]
    plot_width = WIDTH - LEFT - 8
    column = plot_width / len(minutes)
    middle = (HEIGHT - BOTTOM_MARGIN) / 2
    half = middle - 6
    top = _nice_top(max([max(counts.get(m, (0, 0))) for m in minutes] + [1]))
    delivered, failed = [], []
    for index, minute in enumerate(minutes):
        d, f = counts.get(minute, (0, 0))
        x = LEFT + index * column
        label = datetime.fromtimestamp(minute * 60, timezone.utc).strftime("%H:%M")
        if d:
            h = max(1.0, half * d / top)
            delivered.append(Bar(x, middle - h, max(column - 0.5, 0.8), h, f"{label} UTC: {d} delivered"))
        if f:
            h = max(1.0, half * f / top)
            failed.append(Bar(x, middle, max(column - 0.5, 0.8), h, f"{label} UTC: {f} failed"))
    step = max(1, hours * 60 // 6)
    ticks = [(LEFT + i * column, datetime.fromtimestamp(m * 60, timezone.utc).strftime("%H:%M"))
             for i, m in enumerate(minutes) if i % step == 0]
    scale = [(middle - half, f"{top}"), (middle, "0"), (middle + half, f"{top}")]
    in_range = [counts.get(m, (0, 0)) for m in minutes]
    return Chart(hours, delivered, failed, ticks, scale, middle, sum(d for d, _ in in_range),
                 sum(f for _, f in in_range))
