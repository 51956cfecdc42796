"""Money sums over usage: the raw records where they are kept, the hourly
rollups before the retention boundary (usage/retention.py), where the raw
records are purged. Every figure a limit, a meter or the books read comes from
here, so purging records changes none of them.

Rollups are whole UTC hours: a period that starts before the boundary and not
on the hour (a day in a half-hour zone) counts the whole hour it starts in.
For limits that errs on the side of spent; retention keeps at least 35 days,
so only the total quota and the books ever reach before the boundary.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import QuerySet, Sum

from usage.models import UsageHourly, UsageRecord
from usage.watermarks import position

PURGED = "usage-purged"  # the Watermark below which raw records are deleted
HOUR = timedelta(hours=1)


def purged_before() -> datetime | None:
    """Raw records created before this are gone (or going): read the rollups."""
    return position(PURGED)


def window_spent(key_id: int, start: datetime | None) -> Decimal:
    """Exact spend of a key since `start` (all time when None)."""
    boundary = purged_before()
    records = UsageRecord.objects.filter(api_key_id=key_id)
    if boundary is None or (start is not None and start >= boundary):
        if start is not None:
            records = records.filter(created_at__gte=start)
        return _total(records)
    hours = UsageHourly.objects.filter(api_key_id=key_id, hour__lt=boundary)
    if start is not None:
        hours = hours.filter(hour__gt=start - HOUR)  # the hours that end after it
    return _total(hours) + _total(records.filter(created_at__gte=boundary))


def account_costs(account_ids: Iterable[int] | None = None) -> dict[int, Decimal]:
    """Each account's usage cost in all (the books' usage debits must equal it)."""
    boundary = purged_before()
    records = UsageRecord.objects.filter(account__isnull=False)
    hours = UsageHourly.objects.none()
    if boundary is not None:
        records = records.filter(created_at__gte=boundary)
        hours = UsageHourly.objects.filter(hour__lt=boundary)
    if account_ids is not None:
        wanted = list(account_ids)
        records = records.filter(account_id__in=wanted)
        hours = hours.filter(account_id__in=wanted)
    costs = _by_account(records)
    for account_id, cost in _by_account(hours).items():
        costs[account_id] = costs.get(account_id, Decimal(0)) + cost
    return costs


def _total(rows: QuerySet) -> Decimal:
    return rows.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)


def _by_account(rows: QuerySet) -> dict[int, Decimal]:
    totals = rows.order_by().values("account_id").annotate(total=Sum("cost_usd"))
    return {row["account_id"]: row["total"] or Decimal(0) for row in totals}
