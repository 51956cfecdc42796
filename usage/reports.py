"""The usage page's figures, read from the rollups only (UsageHourly for spans
of up to two days, UsageDaily beyond), never from the raw records, so a page
costs the same at a thousand records or a billion.

Spans are in the account's time zone. An hourly span in a zone whose offset is
not a whole hour (India, Nepal…) starts at the UTC hour holding its local
midnight: hourly rows are UTC hours and cannot be split.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet, Sum

from accounts.models import Account
from keys.models import ApiKey
from usage.models import UsageDaily, UsageHourly
from usage.rollups import COUNTERS

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
HOURLY_UP_TO = timedelta(days=2)
RANGES = {
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "last-month": "Last month",
    "custom": "Custom",
}


@dataclass(frozen=True)
class Span:
    """[start, end) in the account's zone; hourly or daily buckets."""

    start: datetime
    end: datetime

    @property
    def hourly(self) -> bool:
        return self.end - self.start <= HOURLY_UP_TO

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta.resolution).date()

    def previous(self) -> Span:
        """The span of equal length just before this one (in days for daily
        spans, so a change of daylight saving time shifts no day)."""
        if self.hourly:
            return Span(self.start - (self.end - self.start), self.start)
        days = (self.last_day - self.first_day).days + 1
        return span_of_days(self.first_day - timedelta(days=days), self.first_day - DAY, zone(self))

    def buckets(self) -> list[datetime]:
        """The start of each bucket: UTC hours, or local midnights."""
        if self.hourly:
            hour = floor_hour(self.start)
            return [hour + HOUR * i for i in range(int((self.end - hour) / HOUR + 0.999))]
        count = (self.last_day - self.first_day).days + 1
        return [midnight(self.first_day + timedelta(days=i), zone(self)) for i in range(count)]


def zone(span: Span) -> ZoneInfo:
    tz = span.start.tzinfo
    assert isinstance(tz, ZoneInfo)
    return tz


def midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tz)


def floor_hour(moment: datetime) -> datetime:
    """The start of the UTC hour holding `moment`, in `moment`'s zone."""
    seconds = moment.timestamp() % 3600
    return moment - timedelta(seconds=seconds)


def span_of_days(first: date, last: date, tz: ZoneInfo) -> Span:
    return Span(midnight(first, tz), midnight(last + DAY, tz))


def span_for(
    choice: str, tz: ZoneInfo, now: datetime, first: date | None = None, last: date | None = None
) -> Span:
    """The span a range choice names, at `now`; "custom" takes first and last day."""
    today = now.astimezone(tz).date()
    if choice == "24h":
        end = floor_hour(now.astimezone(tz)) + HOUR
        return Span(end - DAY, end)
    if choice == "7d":
        return span_of_days(today - timedelta(days=6), today, tz)
    if choice == "30d":
        return span_of_days(today - timedelta(days=29), today, tz)
    if choice == "month":
        return span_of_days(today.replace(day=1), today, tz)
    if choice == "last-month":
        last_of_previous = today.replace(day=1) - DAY
        return span_of_days(last_of_previous.replace(day=1), last_of_previous, tz)
    if choice == "custom" and first is not None and last is not None:
        return span_of_days(first, last, tz)
    raise ValueError(f"unknown range {choice!r}")


@dataclass(frozen=True)
class Filters:
    span: Span
    key_id: int | None = None
    model: str = ""
    group: str = "key"  # or "model"


def rows(account: Account, filters: Filters, span: Span | None = None) -> QuerySet:
    """The account's rollup rows of the span (the filters' unless given), filtered."""
    span = span or filters.span
    if span.hourly:
        queryset: QuerySet = UsageHourly.objects.filter(
            account=account, hour__gte=floor_hour(span.start), hour__lt=span.end
        )
    else:
        queryset = UsageDaily.objects.filter(
            account=account, day__gte=span.first_day, day__lte=span.last_day
        )
    if filters.key_id is not None:
        queryset = queryset.filter(api_key_id=filters.key_id)
    if filters.model:
        queryset = queryset.filter(model=filters.model)
    return queryset.order_by()


def _sums() -> dict:
    return {name: Sum(name) for name in COUNTERS}


@dataclass
class Counts:
    """Summed counters, with the figures the page shows."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms_sum: int = 0
    ttft_count: int = 0
    ttft_ms_sum: int = 0
    streamed: int = 0

    @classmethod
    def of(cls, row: dict) -> Counts:
        values: dict[str, Any] = {name: row.get(name) or 0 for name in COUNTERS}
        return cls(**values)

    def add(self, other: Counts) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def error_percent(self) -> str:
        rate = self.error_rate
        return "—" if rate is None else f"{rate * 100:.1f} %"

    @property
    def latency_ms(self) -> int | None:
        return round(self.latency_ms_sum / self.requests) if self.requests else None

    @property
    def ttft_ms(self) -> int | None:
        return round(self.ttft_ms_sum / self.ttft_count) if self.ttft_count else None


def totals(account: Account, filters: Filters, span: Span | None = None) -> Counts:
    return Counts.of(rows(account, filters, span).aggregate(**_sums()))


@dataclass(frozen=True)
class Change:
    """This span's figure against the previous span's."""

    now: Decimal | int
    before: Decimal | int

    @property
    def percent(self) -> int | None:
        if not self.before:
            return None
        return round((Decimal(self.now) - Decimal(self.before)) * 100 / Decimal(self.before))


def bucket_of(row: dict, span: Span) -> datetime:
    if span.hourly:
        return row["hour"].astimezone(zone(span))
    return midnight(row["day"], zone(span))


def series(account: Account, filters: Filters) -> dict[datetime, dict[str, Counts]]:
    """Counts per bucket and per group (key id or model), buckets in order."""
    period = "hour" if filters.span.hourly else "day"
    group = "api_key_id" if filters.group == "key" else "model"
    found = rows(account, filters).values(period, group).annotate(**_sums())
    by_bucket: dict[datetime, dict[str, Counts]] = {b: {} for b in filters.span.buckets()}
    for row in found:
        by_bucket.setdefault(bucket_of(row, filters.span), {})[str(row[group])] = Counts.of(row)
    return dict(sorted(by_bucket.items()))


def table(account: Account, filters: Filters) -> list[tuple[int, str, Counts]]:
    """(key id, model, counts) per key and model, dearest first."""
    found = rows(account, filters).values("api_key_id", "model").annotate(**_sums())
    table = [(row["api_key_id"], row["model"], Counts.of(row)) for row in found]
    return sorted(table, key=lambda r: (-r[2].cost_usd, -r[2].requests, r[0], r[1]))


def key_names(account: Account) -> dict[int, str]:
    """Every key of the account by id, and the ids the daily rollup holds of
    deleted keys (their usage stays on the page)."""
    names = dict(ApiKey.objects.filter(account=account).values_list("id", "name"))
    gone = UsageDaily.objects.filter(account=account).exclude(api_key_id__in=names)
    for key_id in gone.values_list("api_key_id", flat=True).distinct().order_by():
        names[key_id] = f"Deleted key #{key_id}"
    return names


def model_names(account: Account) -> list[str]:
    """The models to filter by; a request that named none is no choice, the
    empty value being "every model"."""
    found = UsageDaily.objects.filter(account=account).exclude(model="")
    return sorted(set(found.values_list("model", flat=True).distinct().order_by()))


def export_rows(account: Account, filters: Filters, names: dict[int, str]) -> Iterator[list]:
    """The rows of the CSV export: one per bucket, key and model, oldest
    first, read a page at a time (keyset on the rollup's id within a bucket)."""
    period = "hour" if filters.span.hourly else "day"
    queryset = rows(account, filters).order_by(period, "id")
    last: tuple | None = None
    while True:
        page = queryset
        if last is not None:
            page = page.filter(**{f"{period}__gt": last[0]}) | queryset.filter(
                **{period: last[0], "id__gt": last[1]}
            )
        batch = list(page.order_by(period, "id")[:1000])
        for row in batch:
            counts = Counts.of({name: getattr(row, name) for name in COUNTERS})
            yield export_row(
                getattr(row, period), filters.span, row.api_key_id, row.model, counts, names
            )
        if len(batch) < 1000:
            return
        last = (getattr(batch[-1], period), batch[-1].id)


EXPORT_HEADER = [
    "period_start",
    "key_id",
    "key",
    "model",
    "requests",
    "errors",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_usd",
    "avg_latency_ms",
    "avg_ttft_ms",
]


def export_row(
    period: datetime | date, span: Span, key_id: int, model: str, c: Counts, names: dict[int, str]
) -> list:
    start = (
        period.astimezone(zone(span))
        if isinstance(period, datetime)
        else midnight(period, zone(span))
    )
    return [
        start.isoformat(),
        key_id,
        names.get(key_id, f"Deleted key #{key_id}"),
        model,
        c.requests,
        c.errors,
        c.prompt_tokens,
        c.cached_tokens,
        c.cache_write_tokens,
        c.completion_tokens,
        c.reasoning_tokens,
        c.cost_usd,
        c.latency_ms,
        c.ttft_ms,
    ]


def group_totals(by_bucket: dict[datetime, dict[str, Counts]]) -> dict[str, Counts]:
    grouped: dict[str, Counts] = defaultdict(Counts)
    for groups in by_bucket.values():
        for name, counts in groups.items():
            grouped[name].add(counts)
    return grouped
