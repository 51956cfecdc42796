"""The usage page's spans (usage/reports.py): ranges in the account's zone,
hourly up to two days, daily beyond, and the span before each."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from usage.reports import Span, span_for, span_of_days

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 3, 14, 10, 30, tzinfo=TOKYO)


def test_the_last_24_hours_end_with_the_current_hour_in_hourly_buckets():
    span = span_for("24h", TOKYO, NOW)

    assert (span.start, span.end) == (
        datetime(2026, 3, 13, 11, 0, tzinfo=TOKYO),
        datetime(2026, 3, 14, 11, 0, tzinfo=TOKYO),
    )
    assert span.hourly and len(span.buckets()) == 24


@pytest.mark.parametrize(
    ("choice", "first", "last"),
    [
        ("7d", date(2026, 3, 8), date(2026, 3, 14)),
        ("30d", date(2026, 2, 13), date(2026, 3, 14)),
        ("month", date(2026, 3, 1), date(2026, 3, 14)),
        ("last-month", date(2026, 2, 1), date(2026, 2, 28)),
    ],
)
def test_day_ranges_are_whole_local_days_in_daily_buckets(choice, first, last):
    span = span_for(choice, TOKYO, NOW)

    assert (span.first_day, span.last_day) == (first, last)
    assert span.start == datetime(first.year, first.month, first.day, tzinfo=TOKYO)
    assert not span.hourly
    assert len(span.buckets()) == (last - first).days + 1


def test_days_are_the_accounts_days_not_utcs():
    """01:00 on the 15th in Tokyo is still the 14th in UTC."""
    span = span_for("7d", TOKYO, datetime(2026, 3, 15, 1, 0, tzinfo=TOKYO))

    assert span.last_day == date(2026, 3, 15)


def test_a_custom_range_of_two_days_is_hourly_and_of_three_daily():
    two = span_for("custom", TOKYO, NOW, date(2026, 3, 1), date(2026, 3, 2))
    three = span_for("custom", TOKYO, NOW, date(2026, 3, 1), date(2026, 3, 3))

    assert two.hourly and len(two.buckets()) == 48
    assert not three.hourly and len(three.buckets()) == 3


def test_this_month_on_its_first_day_is_hourly():
    span = span_for("month", TOKYO, datetime(2026, 3, 1, 9, 0, tzinfo=TOKYO))

    assert span.hourly


def test_the_previous_span_has_as_many_days_and_ends_where_this_one_starts():
    span = span_for("last-month", TOKYO, NOW)

    before = span.previous()

    assert (before.first_day, before.last_day) == (date(2026, 1, 4), date(2026, 1, 31))


def test_the_previous_span_of_the_last_24_hours_is_the_24_hours_before():
    span = span_for("24h", TOKYO, NOW)

    assert span.previous() == Span(span.start - timedelta(days=1), span.start)


def test_a_day_across_a_clock_change_is_one_bucket():
    new_york = ZoneInfo("America/New_York")
    span = span_of_days(date(2026, 3, 7), date(2026, 3, 9), new_york)

    assert [b.date() for b in span.buckets()] == [
        date(2026, 3, 7),
        date(2026, 3, 8),
        date(2026, 3, 9),
    ]


def test_an_unknown_range_is_refused():
    with pytest.raises(ValueError):
        span_for("forever", TOKYO, NOW)
