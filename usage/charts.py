"""Stacked bar charts as numbers for an SVG template (templates/usage/_chart.html):
the geometry is worked out here, the drawing is markup. Each chart carries its
data as a table too, for screen readers and for copying.

The SVG scales with its viewBox, text included, so a layout that fits in the
viewBox fits at every width, a phone's too: the gutter for the y labels is as
wide as the longest label, and the x axis labels only every nth bucket, n the
least that keeps neighbouring labels apart."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from itertools import count, pairwise

WIDTH, HEIGHT = 720, 260
RIGHT, TOP, BOTTOM = 8, 12, 34
FONT = 18  # the labels' size in the viewBox's units: .chart .tick in console.css
TICK_GAP = 6  # between a y label and the plot
EDGE = 4  # between a label and the edge of the SVG
LABEL_GAP = 14  # at least between two x labels
Y_INTERVALS = 4  # about as many steps between 0 and the top of the y axis
HOURS_APART = (1, 2, 3, 4, 6, 8, 12, 24)  # the divisors of a day

# Widths in em of DejaVu Sans, the widest font the console's stack falls back
# to (Arial, Roboto and Segoe UI are narrower), rounded up: an upper bound.
NARROW = frozenset(".,:;' ")
EM_NARROW, EM_LOWER, EM_WIDE = 0.34, 0.64, 0.84

Value = Decimal | int
AxisLabel = Callable[[datetime, datetime | None], str]


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
    values: list[Value]
    hint: str = ""  # what the name means, where it is not plain


@dataclass
class Chart:
    id: str
    title: str
    desc: str
    columns: list[str]  # the data table's header: bucket, then each series
    rows: list[list[str]]
    legend: list[Series]
    left: float
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    right_edge: int = WIDTH - RIGHT
    baseline: float = HEIGHT - BOTTOM

    @property
    def tick_x(self) -> float:
        return self.left - TICK_GAP


def text_width(text: str) -> float:
    """The most a label can take across at FONT, in the viewBox's units."""
    ems = sum(
        EM_NARROW if c in NARROW else EM_LOWER if c.islower() or c.isdigit() else EM_WIDE
        for c in text
    )
    return ems * FONT


def y_ticks(top: Value, *, integer: bool, fmt: Callable[[Value], str]) -> list[tuple[Value, str]]:
    """Ticks from 0 to at least `top` in round steps (1, 2 or 5 times a power
    of ten): whole steps for counts, and never two ticks with the same label
    (a step finer than the format shows is skipped for the next one)."""
    top = Decimal(top) if top > 0 else Decimal(1)
    raw = top / Y_INTERVALS
    magnitude = Decimal(1).scaleb(raw.adjusted())
    for power in count():
        for multiple in (1, 2, 5):
            step = multiple * magnitude.scaleb(power)
            if step < raw or (integer and step % 1):
                continue
            steps = max(1, int((top / step).to_integral_value(ROUND_CEILING)))
            values: list[Value] = [step * i for i in range(steps + 1)]
            if integer:
                values = [int(v) for v in values]
            labels = [fmt(v) for v in values]
            if len(set(labels)) == len(labels):
                return list(zip(values, labels, strict=True))
    raise AssertionError("unreachable: count() never ends")


def x_labels(
    buckets: list[datetime], *, hourly: bool, left: float, slot: float, label: AxisLabel
) -> list[tuple[float, str]]:
    """(x, text) of every nth bucket, n the least for which no two labels
    overlap. Hours are labelled on the clock's round hours (n divides a day),
    so midnight is among them; each label is told the bucket of the label
    before it, so it can leave out what that one already says (the day)."""
    everies = [*HOURS_APART, *range(48, len(buckets) + 24, 24)] if hourly else count(1)
    for every in everies:
        shown = [(i, b) for i, b in enumerate(buckets) if _aligned(i, b, every, hourly)]
        placed = _placed(shown, left=left, slot=slot, label=label)
        spans = [(x - text_width(text) / 2, x + text_width(text) / 2) for x, text in placed]
        if len(placed) <= 1 or all(b[0] - a[1] >= LABEL_GAP for a, b in pairwise(spans)):
            return placed
    return []


def _aligned(i: int, bucket: datetime, every: int, hourly: bool) -> bool:
    if hourly:
        return (bucket.toordinal() * 24 + bucket.hour) % every == 0
    return i % every == 0


def _placed(
    shown: list[tuple[int, datetime]], *, left: float, slot: float, label: AxisLabel
) -> list[tuple[float, str]]:
    placed = []
    for n, (i, bucket) in enumerate(shown):
        text = label(bucket, shown[n - 1][1] if n else None)
        half = text_width(text) / 2
        centre = min(max(left + slot * (i + 0.5), half + EDGE), WIDTH - EDGE - half)
        placed.append((round(centre, 2), text))
    return placed


def stacked(
    *,
    id: str,
    title: str,
    desc: str,
    buckets: list[datetime],
    bucket_label: Callable[[datetime], str],
    axis_label: AxisLabel,
    hourly: bool,
    series: list[Series],
    fmt: Callable[[Value], str],
) -> Chart:
    """Bars per bucket, each the series stacked in order (the first at the
    bottom). `bucket_label` names a bucket in full (the data table, a bar's
    tooltip); `axis_label` as briefly as the axis allows."""
    totals = [sum((s.values[i] for s in series), Decimal(0)) for i in range(len(buckets))]
    integer = all(isinstance(v, int) for s in series for v in s.values)
    ticks = y_ticks(max(totals, default=Decimal(0)), integer=integer, fmt=fmt)
    left = EDGE + TICK_GAP + max(text_width(text) for _, text in ticks)
    top = Decimal(ticks[-1][0])
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - left - RIGHT) / max(len(buckets), 1)
    chart = Chart(
        id=id,
        title=title,
        desc=desc,
        columns=["Period", *(s.name for s in series), "Total"],
        rows=[
            [bucket_label(b), *(fmt(s.values[i]) for s in series), fmt(totals[i])]
            for i, b in enumerate(buckets)
        ],
        legend=series,
        left=round(left, 2),
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
                    x=round(left + slot * i + slot * 0.1, 2),
                    y=round(base, 2),
                    width=round(max(slot * 0.8, 1), 2),
                    height=round(max(h, 0.5), 2),
                    css=s.css,
                    label=f"{bucket_label(bucket)} · {s.name}: {fmt(value)}",
                )
            )
    chart.y_ticks = [
        (round(TOP + plot_h * (1 - float(Decimal(value) / top)), 2), text) for value, text in ticks
    ]
    chart.x_labels = x_labels(buckets, hourly=hourly, left=left, slot=slot, label=axis_label)
    return chart
