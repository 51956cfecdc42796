"""Daily aggregates per account, key and model, in the account's time zone,
equal to the raw records summed by local day."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from usage.models import UsageDaily, UsageDailyZone, UsageHourly, UsageRecord
from usage.services import usage_rollup

TOKYO = ZoneInfo("Asia/Tokyo")
KOLKATA = ZoneInfo("Asia/Kolkata")


def daily() -> dict:
    return {
        (row.day, row.account_id, row.api_key_id, row.model): (
            row.requests,
            row.errors,
            row.prompt_tokens,
            row.cached_tokens,
            row.completion_tokens,
            row.reasoning_tokens,
            row.cost_usd,
            row.latency_ms_sum,
            row.ttft_count,
            row.ttft_ms_sum,
            row.streamed,
        )
        for row in UsageDaily.objects.all()
    }


def raw_daily_sums() -> dict:
    """The raw records summed in Python by day in each account's current zone."""
    sums: dict = defaultdict(lambda: [0] * 6 + [Decimal(0)] + [0] * 4)
    records = UsageRecord.objects.filter(api_key__isnull=False).select_related("account")
    for r in records:
        day = r.created_at.astimezone(ZoneInfo(r.account.timezone)).date()
        total = sums[(day, r.account_id, r.api_key_id, r.model)]
        values = (
            1,
            int(r.status >= 400),
            r.prompt_tokens,
            r.cached_tokens,
            r.completion_tokens,
            r.reasoning_tokens,
            r.cost_usd,
            r.latency_ms,
            int(r.ttft_ms is not None),
            r.ttft_ms or 0,
            int(r.stream),
        )
        for i, value in enumerate(values):
            total[i] += value
    return {k: tuple(v) for k, v in sums.items()}


def set_zone(key, name: str) -> None:
    key.account.timezone = name
    key.account.save()


@pytest.fixture
def tokyo_key(make_key):
    key, _ = make_key(name="tokyo")
    set_zone(key, "Asia/Tokyo")
    return key


def tokyo(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=TOKYO)


def test_a_record_at_2359_and_one_at_0001_tokyo_time_land_in_different_days(tokyo_key, record):
    record(tokyo_key, at=tokyo(14, 23, 59), cost_usd=Decimal("0.25"))
    record(tokyo_key, at=tokyo(15, 0, 1), cost_usd=Decimal("0.5"))

    usage_rollup()

    days = dict(UsageDaily.objects.values_list("day", "cost_usd"))
    assert days == {date(2026, 3, 14): Decimal("0.25"), date(2026, 3, 15): Decimal("0.5")}


def test_tokyo_days_are_not_utc_days(tokyo_key, record):
    """09:00 Tokyo is midnight UTC: a UTC day would split these two."""
    record(tokyo_key, at=tokyo(15, 8, 59))
    record(tokyo_key, at=tokyo(15, 9, 1))

    usage_rollup()

    [row] = UsageDaily.objects.all()
    assert (row.day, row.requests) == (date(2026, 3, 15), 2)


def test_a_half_hour_zone_splits_an_hour_at_its_midnight(make_key, record):
    """Kolkata is UTC+05:30: 23:59 and 00:01 local are in the same UTC hour."""
    key, _ = make_key()
    set_zone(key, "Asia/Kolkata")
    before = datetime(2026, 3, 14, 23, 59, tzinfo=KOLKATA)
    after = datetime(2026, 3, 15, 0, 1, tzinfo=KOLKATA)
    record(key, at=before, prompt_tokens=3, cost_usd=Decimal("0.125"))
    record(key, at=after, prompt_tokens=4, cost_usd=Decimal("0.5"))

    usage_rollup()

    assert UsageHourly.objects.count() == 1
    days = dict(UsageDaily.objects.values_list("day", "prompt_tokens"))
    assert days == {date(2026, 3, 14): 3, date(2026, 3, 15): 4}


@pytest.fixture
def mixed_usage(make_key, record):
    """Three accounts (UTC, Tokyo, Kolkata), two keys and two models each,
    records over three days with every counter set."""
    from accounts.models import User

    start = datetime(2026, 3, 13, 20, 0, tzinfo=UTC)
    for n, zone in enumerate(("UTC", "Asia/Tokyo", "Asia/Kolkata")):
        account = User.objects.create_user(f"user{n}@example.com").account
        account.timezone = zone
        account.save()
        keys = [make_key(account=account, name=f"k{i}")[0] for i in range(2)]
        for i in range(60):
            record(
                keys[i % 2],
                at=start + timedelta(minutes=53 * i),
                model=f"m{i % 3 % 2}",
                status=200 if i % 7 else 502,
                prompt_tokens=100 + i,
                cached_tokens=i % 5,
                completion_tokens=10 + i,
                reasoning_tokens=i % 3,
                cost_usd=Decimal("0.000123456789") * (i + 1),
                latency_ms=300 + i,
                ttft_ms=None if i % 4 == 0 else 40 + i,
                stream=i % 2 == 0,
            )


def test_daily_rows_equal_the_raw_records_summed_by_local_day(mixed_usage):
    usage_rollup()

    assert daily() == raw_daily_sums()
    assert len({row[0] for row in daily()}) >= 3


def test_records_written_late_are_folded_into_their_day(mixed_usage, tokyo_key, record):
    usage_rollup()

    # A worker's batch arriving after the run, dated the day before yesterday.
    record(tokyo_key, at=tokyo(13, 12, 0), prompt_tokens=7, cost_usd=Decimal("0.75"))
    record(tokyo_key, at=tokyo(14, 23, 59), prompt_tokens=8, cost_usd=Decimal("0.5"))
    usage_rollup()

    assert daily() == raw_daily_sums()
    assert UsageDaily.objects.get(api_key_id=tokyo_key.id, day=date(2026, 3, 13)).prompt_tokens == 7


def test_rollup_twice_gives_the_same_days(mixed_usage):
    usage_rollup()
    first = daily()

    usage_rollup(since=datetime(2026, 1, 1, tzinfo=UTC))

    assert daily() == first


def test_a_changed_time_zone_rebuilds_the_accounts_days_in_the_new_zone(tokyo_key, record):
    record(tokyo_key, at=tokyo(14, 23, 59), cost_usd=Decimal("0.25"))
    record(tokyo_key, at=tokyo(15, 0, 1), cost_usd=Decimal("0.5"))
    usage_rollup()

    set_zone(tokyo_key, "UTC")  # 14 March 14:59 and 15:01 UTC: one day
    usage_rollup()

    assert dict(UsageDaily.objects.values_list("day", "cost_usd")) == {
        date(2026, 3, 14): Decimal("0.75")
    }
    assert UsageDailyZone.objects.get(account=tokyo_key.account_id).timezone == "UTC"


def test_a_changed_time_zone_to_a_half_hour_zone_still_equals_the_raw_records(
    mixed_usage, tokyo_key, record
):
    record(tokyo_key, at=tokyo(14, 23, 59), cost_usd=Decimal("0.25"))
    usage_rollup()

    set_zone(tokyo_key, "Asia/Kolkata")
    usage_rollup()

    assert daily() == raw_daily_sums()


def test_hourly_rows_keep_latency_and_time_to_first_token_sums(make_key, record):
    key, _ = make_key()
    at = datetime(2026, 3, 14, 9, 5, tzinfo=UTC)
    record(key, at=at, latency_ms=1000, ttft_ms=200, stream=True)
    record(key, at=at, latency_ms=500, ttft_ms=None)
    record(key, at=at, latency_ms=300, ttft_ms=100, status=502)

    usage_rollup()

    [row] = UsageHourly.objects.all()
    assert (row.latency_ms_sum, row.ttft_count, row.ttft_ms_sum, row.streamed) == (1800, 2, 300, 1)
