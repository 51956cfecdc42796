"""The usage charts' axes, worked out in usage/charts.py: y ticks that read
right, a gutter as wide as the longest y label, x labels that never overlap.
The browser tests (tests/console/test_usage_browser.py) measure the drawn text."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from console.templatetags.pb import usd
from usage.charts import TICK_GAP, WIDTH, Series, stacked, text_width, y_ticks
from usage.dashboard import _axes, count
from usage.reports import Filters, span_for

UTC, TOKYO = ZoneInfo("UTC"), ZoneInfo("Asia/Tokyo")


def chart(filters: Filters, values: list, fmt=count):
    buckets = filters.span.buckets()
    padded = [0] * (len(buckets) - len(values)) + values
    return stacked(
        id="c",
        title="t",
        desc="d",
        buckets=buckets,
        series=[Series("a", "s0", padded)],
        fmt=fmt,
        **_axes(filters),
    )


def filters(choice: str, now: datetime, tz: ZoneInfo = UTC) -> Filters:
    return Filters(span=span_for(choice, tz, now), key_id=None, model="", group="key")


def tick_labels(chart) -> list[str]:
    return [text for _, text in chart.y_ticks]


def overlaps(chart) -> list[tuple[str, str]]:
    spans = [(x - text_width(t) / 2, x + text_width(t) / 2, t) for x, t in chart.x_labels]
    return [(a[2], b[2]) for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1]]


NOW = datetime(2026, 12, 4, 21, 30, tzinfo=UTC)


def test_one_request_gets_the_ticks_0_and_1_not_0_0_1():
    assert tick_labels(chart(filters("24h", NOW), [1])) == ["0", "1"]


def test_counts_get_whole_round_steps_up_past_the_tallest_bar():
    assert tick_labels(chart(filters("24h", NOW), [54])) == ["0", "20", "40", "60"]


@given(st.integers(min_value=0, max_value=10**12))
def test_count_ticks_are_whole_distinct_and_reach_the_top(top):
    ticks = y_ticks(top, integer=True, fmt=count)
    values = [value for value, _ in ticks]
    assert all(isinstance(value, int) for value in values)
    assert len({label for _, label in ticks}) == len(ticks)
    assert values[0] == 0 and values[-1] >= top
    assert 2 <= len(ticks) <= 6


@given(st.decimals(min_value=0, max_value=10**7, places=8, allow_nan=False))
def test_dollar_ticks_are_distinct_and_reach_the_top(top):
    ticks = y_ticks(top, integer=False, fmt=usd)
    assert len({label for _, label in ticks}) == len(ticks)
    assert ticks[-1][0] >= top


def test_the_gutter_holds_the_longest_dollar_label():
    cost = chart(filters("24h", NOW), [Decimal("0.000325"), Decimal("0.00065")], fmt=usd)

    assert "$0.0006" in tick_labels(cost)
    for _, label in cost.y_ticks:
        assert cost.left - TICK_GAP - text_width(label) >= 0, label


def test_a_wider_label_gets_a_wider_gutter():
    small = chart(filters("24h", NOW), [3])
    large = chart(filters("24h", NOW), [3_000_000])

    assert large.left > small.left + text_width("000,000") - 1


def test_the_last_24_hours_label_round_hours_as_times_and_midnight_as_the_day():
    labels = [text for _, text in chart(filters("24h", NOW), [5]).x_labels]

    assert labels[0] == "04 Dec"  # midnight: the first bucket, 22:00 on the 3rd, is no round hour
    assert all(label.endswith(":00") and len(label) == 5 for label in labels[1:])
    hours = [int(label[:2]) for label in labels[1:]]
    step = hours[0]
    assert step in (2, 3, 4, 6) and hours == list(range(step, 24, step))[: len(hours)]


def test_the_first_label_names_its_day_when_it_is_not_midnight():
    now = datetime(2026, 12, 4, 3, 30, tzinfo=UTC)  # buckets from 04:00 on the 3rd
    labels = [text for _, text in chart(filters("24h", now), [5]).x_labels]

    assert labels[0].startswith("03 Dec ") and labels[0].endswith(":00")
    assert "04 Dec" in labels  # the midnight between


def test_no_x_labels_overlap_hourly_or_daily_in_any_zone():
    for tz in (UTC, TOKYO, ZoneInfo("Asia/Kolkata"), ZoneInfo("America/St_Johns")):
        for choice in ("24h", "7d", "30d", "month", "last-month"):
            for hour in range(0, 24, 5):
                c = chart(filters(choice, NOW + timedelta(hours=hour), tz), [7])
                assert len(c.x_labels) >= 2, (tz, choice)
                assert not overlaps(c), (tz, choice, hour)
                assert all(
                    text_width(t) / 2 <= x <= WIDTH - text_width(t) / 2 for x, t in c.x_labels
                )


def test_a_custom_year_still_labels_its_axis_without_overlap():
    span = span_for("custom", TOKYO, NOW, date(2026, 1, 1), date(2026, 12, 31))
    c = chart(Filters(span=span, key_id=None, model="", group="model"), [1])

    assert len(c.x_labels) >= 4 and not overlaps(c)
