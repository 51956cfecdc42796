"""Reads of usage records for the console, always scoped to one account.

Periods are calendar days and months in the account's time zone. They are
summed from UsageRecord (one row per request, indexed by account and by key
with time) rather than UsageHourly: hourly buckets lag by the rollup interval
and do not line up with midnight in zones with a half-hour offset.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import Account
from keys.models import ApiKey
from usage import budgets
from usage.budgets import MICROS, budget_windows
from usage.models import UsageRecord
from usage.spend import window_spent


@dataclass(frozen=True)
class Totals:
    requests: int = 0
    tokens: int = 0
    cost_usd: Decimal = Decimal(0)


@dataclass(frozen=True)
class Summary:
    today: Totals
    month: Totals


def period_starts(tz_name: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of today and of this month in the zone, as aware datetimes."""
    local = (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(tz_name))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


def _records(account: Account, api_key: ApiKey | None) -> QuerySet[UsageRecord]:
    records = UsageRecord.objects.filter(account=account)
    return records.filter(api_key=api_key) if api_key is not None else records


def _totals(row: dict, prefix: str) -> Totals:
    return Totals(
        requests=row[f"{prefix}_requests"] or 0,
        tokens=row[f"{prefix}_tokens"] or 0,
        cost_usd=row[f"{prefix}_cost"] or Decimal(0),
    )


def usage_summary(
    *, account: Account, api_key: ApiKey | None = None, now: datetime | None = None
) -> Summary:
    """Requests, tokens and spend today and this month, in one query."""
    day, month = period_starts(account.timezone, now)
    tokens = F("prompt_tokens") + F("completion_tokens")
    today = Q(created_at__gte=day)
    row = (
        _records(account, api_key)
        .filter(created_at__gte=month)
        .aggregate(
            month_requests=Count("id"),
            month_tokens=Sum(tokens),
            month_cost=Sum("cost_usd"),
            today_requests=Count("id", filter=today),
            today_tokens=Sum(tokens, filter=today),
            today_cost=Sum("cost_usd", filter=today),
        )
    )
    return Summary(today=_totals(row, "today"), month=_totals(row, "month"))


def usage_recent(
    *, account: Account, api_key: ApiKey | None = None, limit: int = 20
) -> list[UsageRecord]:
    records = _records(account, api_key).select_related("api_key").order_by("-created_at")
    return list(records[:limit])


def spend_by_key(*, account: Account, now: datetime | None = None) -> dict[int, Totals]:
    """This month's totals per key of the account."""
    _, month = period_starts(account.timezone, now)
    rows = (
        UsageRecord.objects.filter(account=account, created_at__gte=month, api_key__isnull=False)
        .values("api_key_id")
        .annotate(
            requests=Count("id"),
            tokens=Sum(F("prompt_tokens") + F("completion_tokens")),
            cost=Sum("cost_usd"),
        )
    )
    return {
        row["api_key_id"]: Totals(row["requests"], row["tokens"] or 0, row["cost"] or Decimal(0))
        for row in rows
    }


@dataclass(frozen=True)
class Meter:
    """One limit of a key and how much of it is used right now."""

    label: str
    used: Decimal | int
    limit: Decimal | int
    money: bool
    resets_at: datetime | None = None

    @property
    def percent(self) -> int:
        if not self.limit:
            return 100 if self.used else 0
        return min(int(self.used * 100 / self.limit), 100)

    @property
    def level(self) -> str:
        return "full" if self.percent >= 100 else "warn" if self.percent >= 80 else "ok"


def key_meters(
    *,
    api_key: ApiKey,
    current_rate: Callable[[ApiKey], tuple[int, int]],
    now: datetime | None = None,
) -> list[Meter]:
    """Live usage against each limit of the key: budgets from the usage
    records, RPM and TPM from the limiter's current windows (`current_rate`:
    gateway.limits.current_rate, handed in by the caller, as the usage app
    does not import the gateway)."""
    labels = {"daily": "Today", "monthly": "This month", "total": "Total quota"}
    meters = [
        Meter(
            labels[w.name],
            window_spent(api_key.pk, w.start),
            Decimal(w.limit_micros) / MICROS,
            money=True,
            resets_at=w.resets_at,
        )
        for w in budget_windows(api_key, now or budgets.now())
    ]
    if api_key.rpm_limit or api_key.tpm_limit:
        requests, tokens = current_rate(api_key)
        if api_key.rpm_limit:
            meters.append(Meter("Requests, last minute", requests, api_key.rpm_limit, money=False))
        if api_key.tpm_limit:
            meters.append(Meter("Tokens, last minute", tokens, api_key.tpm_limit, money=False))
    return meters


@dataclass(frozen=True)
class KeySpend:
    """A key's spend in its account's calendar: the figures its budget
    windows count (window_spent, from the same starts)."""

    today: Decimal
    month: Decimal
    total: Decimal
    day_start: datetime
    month_start: datetime


def key_spend(*, key_id: int, tz_name: str, now: datetime | None = None) -> KeySpend:
    """Spend today, this month and in all of one key (three indexed sums)."""
    day, month = period_starts(tz_name, now or budgets.now())
    return KeySpend(
        today=window_spent(key_id, day),
        month=window_spent(key_id, month),
        total=window_spent(key_id, None),
        day_start=day,
        month_start=month,
    )
