"""Folding usage records into hourly (UTC) and daily (the account's time zone)
aggregates, each as one INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE over
the periods a run touched, so a run costs a few statements however many
periods, keys and models it covers.

A touched period is recomputed whole, never incremented: the rollup re-reads
records (usage/watermarks.py OVERLAP), so adding deltas would count some twice.

Days come from the hourly rows when the day starts and ends on a UTC hour (every
zone with a whole-hour offset, Tokyo, New York, UTC…), so a day costs at most
24 hourly rows per key and model. A day whose bounds fall inside an hour
(India's +05:30, Nepal's +05:45, Newfoundland, parts of Australia) is summed
from the raw records instead: an hourly row cannot be split.

When an account's time zone changes, its days (in the old zone) are deleted and
rebuilt in the new zone on the next run, from the same sources; until then the
page shows the days of the old zone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate, TruncHour

from accounts.models import Account
from usage.models import UsageCounters, UsageDaily, UsageDailyZone, UsageHourly, UsageRecord
from usage.spend import purged_before

HOUR = timedelta(hours=1)
COUNTERS = [
    "requests",
    "errors",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_usd",
    "latency_ms_sum",
    "ttft_count",
    "ttft_ms_sum",
    "streamed",
]
# Periods per statement: a first run over months of records stays a handful of
# statements without one of them growing a WHERE clause of thousands of ranges.
CHUNK = 200


def _sums_of_records() -> dict:
    return {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status__gte=400)),
        "prompt_tokens": Sum("prompt_tokens"),
        "cached_tokens": Sum("cached_tokens"),
        "cache_write_tokens": Sum("cache_write_tokens"),
        "completion_tokens": Sum("completion_tokens"),
        "reasoning_tokens": Sum("reasoning_tokens"),
        "cost_usd": Sum("cost_usd"),
        "latency_ms_sum": Sum("latency_ms"),
        "ttft_count": Count("ttft_ms"),
        "ttft_ms_sum": Coalesce(Sum("ttft_ms"), 0),
        "streamed": Count("id", filter=Q(stream=True)),
    }


def _sums_of_hours() -> dict:
    return {name: Sum(name) for name in COUNTERS}


def _upsert(target: type[UsageCounters], period: str, grouped: QuerySet, keys: dict) -> int:
    """INSERT INTO target SELECT <keys, sums> FROM grouped ON CONFLICT UPDATE.
    Every selected column is an annotation (prefixed: a name may not be a
    field of the source model), so the SELECT list is in annotation order."""
    sums = _sums_of_records() if grouped.model is UsageRecord else _sums_of_hours()
    select = grouped.order_by().values(**{f"k_{n}": e for n, e in keys.items()})
    select = select.annotate(**{f"c_{n}": e for n, e in sums.items()})
    names = [name[2:] for name in select.query.annotation_select]
    names = [period if name == "bucket" else name for name in names]
    assert set(names) == {period, "account", "api_key_id", "model", *COUNTERS}, names
    sql, params = select.query.sql_with_params()
    quote = connection.ops.quote_name
    columns = {f.name: f.column for f in target._meta.concrete_fields if f.column}
    column = {n: quote(columns[n]) for n in names}
    unique = ", ".join(column[n] for n in (period, "account", "api_key_id", "model"))
    updates = ", ".join(f"{column[n]} = EXCLUDED.{column[n]}" for n in COUNTERS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(target._meta.db_table)} ({', '.join(column.values())}) "
            f"{sql} ON CONFLICT ({unique}) DO UPDATE SET {updates}",
            params,
        )
        return cursor.rowcount


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def rollup_hours(touched: dict[datetime, set[int]]) -> int:
    """Recompute the hourly rows of each (UTC hour: account ids) touched."""
    written = 0
    for hours in _chunks(sorted(touched)):
        ranges = Q()
        for hour in hours:
            ranges |= Q(
                created_at__gte=hour, created_at__lt=hour + HOUR, account_id__in=touched[hour]
            )
        records = UsageRecord.objects.filter(ranges, api_key__isnull=False)
        written += _upsert(UsageHourly, "hour", records, _keys(TruncHour("created_at")))
    return written


def _keys(bucket) -> dict:
    """What a rollup groups by: account, key, model and the period (`bucket`)."""
    return {
        "account": F("account_id"),
        "api_key_id": F("api_key_id"),
        "model": F("model"),
        "bucket": bucket,
    }


def _bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), zone)
    return start, datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)


def _on_the_hour(moment: datetime) -> bool:
    return moment.utcoffset() is not None and moment.timestamp() % 3600 == 0


def rollup_days(zone_name: str, touched: dict[date, set[int]]) -> int:
    """Recompute the daily rows of each (local day: account ids) touched, for
    accounts whose days are in `zone_name`."""
    zone = ZoneInfo(zone_name)
    purged = purged_before()
    whole: list[tuple[date, datetime, datetime]] = []
    split: list[tuple[date, datetime, datetime]] = []
    for day in sorted(touched):
        start, end = _bounds(day, zone)
        # A split day whose records are purged (a zone changed long after) is
        # summed from the hours, each counted in the day it starts in.
        on_the_hours = _on_the_hour(start) and _on_the_hour(end)
        old = purged is not None and start < purged
        (whole if on_the_hours or old else split).append((day, start, end))
    written = 0
    for days in _chunks(whole):
        ranges = Q()
        for day, start, end in days:
            ranges |= Q(hour__gte=start, hour__lt=end, account_id__in=touched[day])
        hours = UsageHourly.objects.filter(ranges)
        keys = _keys(TruncDate("hour", tzinfo=zone))
        written += _upsert(UsageDaily, "day", hours, keys)
    for days in _chunks(split):
        ranges = Q()
        for day, start, end in days:
            ranges |= Q(created_at__gte=start, created_at__lt=end, account_id__in=touched[day])
        records = UsageRecord.objects.filter(ranges, api_key__isnull=False)
        keys = _keys(TruncDate("created_at", tzinfo=zone))
        written += _upsert(UsageDaily, "day", records, keys)
    return written


def local_days(hour: datetime, zone: ZoneInfo) -> set[date]:
    """The local days an hour overlaps: one, or two where the zone's midnight
    falls inside it."""
    return {
        hour.astimezone(zone).date(),
        (hour + HOUR - timedelta.resolution).astimezone(zone).date(),
    }


def rollup_touched(touched_hours: dict[datetime, set[int]]) -> tuple[int, int]:
    """The hourly rows, then the daily rows, of what the run touched; first
    rebuilding the days of every account whose time zone changed. Returns
    (hourly rows, daily rows) written."""
    hourly = rollup_hours(touched_hours)
    daily = rebuild_moved_accounts()
    accounts = set().union(*touched_hours.values()) if touched_hours else set()
    zones = dict(Account.objects.filter(id__in=accounts).values_list("id", "timezone"))
    days: dict[str, dict[date, set[int]]] = defaultdict(lambda: defaultdict(set))
    for hour, ids in touched_hours.items():
        for account_id in ids:
            zone = zones[account_id]
            for day in local_days(hour, ZoneInfo(zone)):
                days[zone][day].add(account_id)
    for zone_name, touched_days in days.items():
        daily += rollup_days(zone_name, touched_days)
    UsageDailyZone.objects.bulk_create(
        [UsageDailyZone(account_id=a, timezone=z) for a, z in zones.items()],
        ignore_conflicts=True,
    )
    return hourly, daily


def rebuild_moved_accounts() -> int:
    """Delete and recompute, in its new zone, every day of each account whose
    time zone is no longer the one its days were computed in."""
    moved = dict(
        Account.objects.filter(usage_daily_zone__isnull=False)
        .exclude(usage_daily_zone__timezone=F("timezone"))
        .values_list("id", "timezone")
    )
    written = 0
    for account_id, zone_name in moved.items():
        UsageDaily.objects.filter(account_id=account_id).delete()
        span = UsageHourly.objects.filter(account_id=account_id).aggregate(
            first=Min("hour"), last=Max("hour")
        )
        if span["first"] is not None:
            zone = ZoneInfo(zone_name)
            first, last = (
                span["first"].astimezone(zone).date(),
                span["last"].astimezone(zone).date(),
            )
            count = (last - first).days + 1
            touched = {first + timedelta(days=i): {account_id} for i in range(count + 1)}
            written += rollup_days(zone_name, touched)
        UsageDailyZone.objects.filter(account_id=account_id).update(timezone=zone_name)
    return written
