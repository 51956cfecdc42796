"""Stacked bar charts as numbers for an SVG template (templates/usage/_chart.html):
the geometry is worked out here, the drawing is markup. Each chart carries its
data as a table too, for screen readers and for copying."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 84, 8, 12, 34
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    label: str


@dataclass(frozen=True)
class Series:
    name: str
    css: str
    values: list[Decimal | int]


@dataclass
class Chart:
    id: str
    title: str
    desc: str
    columns: list[str]  # the data table's header: bucket, then each series
    rows: list[list[str]]
    legend: list[tuple[str, str]]  # css, name
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    baseline: float = HEIGHT - BOTTOM


def stacked(
    *,
    id: str,
    title: str,
    desc: str,
    buckets: list[datetime],
    bucket_label: Callable[[datetime], str],
    series: list[Series],
    fmt: Callable[[Decimal | int], str],
) -> Chart:
    """Bars per bucket, each the series stacked in order (the first at the bottom)."""
    totals = [sum((s.values[i] for s in series), Decimal(0)) for i in range(len(buckets))]
    top = max(totals, default=Decimal(0)) or Decimal(1)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(buckets), 1)
    chart = Chart(
        id=id,
        title=title,
        desc=desc,
        columns=["Period", *(s.name for s in series), "Total"],
        rows=[
            [bucket_label(b), *(fmt(s.values[i]) for s in series), fmt(totals[i])]
            for i, b in enumerate(buckets)
        ],
        legend=[(s.css, s.name) for s in series],
    )
    for i, bucket in enumerate(buckets):
        base = float(HEIGHT - BOTTOM)
        for s in series:
            value = s.values[i]
            if not value:
                continue
            h = float(Decimal(value) / top) * plot_h
            base -= h
            chart.bars.append(
                Bar(
                    x=round(LEFT + slot * i + slot * 0.1, 2),
                    y=round(base, 2),
                    width=round(max(slot * 0.8, 1), 2),
                    height=round(max(h, 0.5), 2),
                    css=s.css,
                    label=f"{bucket_label(bucket)} · {s.name}: {fmt(value)}",
                )
            )
    chart.y_ticks = [
        (round(TOP + plot_h * (1 - float(share)), 2), fmt(top * share))
        for share in (Decimal(0), Decimal("0.5"), Decimal(1))
    ]
    step = max(1, -(-len(buckets) // MAX_X_LABELS))
    chart.x_labels = [
        (round(LEFT + slot * (i + 0.5), 2), bucket_label(b))
        for i, b in enumerate(buckets)
        if i % step == 0
    ]
    return chart
