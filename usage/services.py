"""Folding usage records into hourly aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncHour

from usage.models import UsageHourly, UsageRecord

# Records are written in batches by each web worker; one written a little after
# the previous run may carry an older created_at. Each run re-reads this much
# before its watermark so no record is missed (the aggregates are recomputed,
# not incremented, so re-reading is harmless).
OVERLAP = timedelta(minutes=5)


def usage_rollup(*, since: datetime | None = None) -> int:
    """Recompute every hour touched by records written since `since`.

    Returns the number of hourly rows written. Idempotent.
    """
    if since is None:
        latest = UsageHourly.objects.order_by("-hour").values_list("hour", flat=True).first()
        since = (latest - OVERLAP) if latest else datetime.min.replace(tzinfo=UTC)
    hours = (
        UsageRecord.objects.filter(recorded_at__gte=since, account__isnull=False)
        .annotate(h=TruncHour("created_at"))
        .values_list("h", flat=True)
        .distinct()
    )
    written = 0
    for hour in sorted(set(hours)):
        written += _rollup_hour(hour)
    return written


def _rollup_hour(hour: datetime) -> int:
    rows = (
        UsageRecord.objects.filter(
            created_at__gte=hour,
            created_at__lt=hour + timedelta(hours=1),
            account__isnull=False,
            api_key__isnull=False,
        )
        .values("account_id", "api_key_id", "model")
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(status__gte=400)),
            prompt=Sum("prompt_tokens"),
            cached=Sum("cached_tokens"),
            cache_write=Sum("cache_write_tokens"),
            completion=Sum("completion_tokens"),
            reasoning=Sum("reasoning_tokens"),
            cost=Sum("cost_usd"),
        )
    )
    # An upsert, not delete-and-insert: two runs of the same hour may overlap.
    # Records are append-only, so a recomputed group only ever grows.
    UsageHourly.objects.bulk_create(
        [
            UsageHourly(
                hour=hour,
                account_id=row["account_id"],
                api_key_id=row["api_key_id"],
                model=row["model"],
                requests=row["requests"],
                errors=row["errors"],
                prompt_tokens=row["prompt"] or 0,
                cached_tokens=row["cached"] or 0,
                cache_write_tokens=row["cache_write"] or 0,
                completion_tokens=row["completion"] or 0,
                reasoning_tokens=row["reasoning"] or 0,
                cost_usd=row["cost"] or 0,
            )
            for row in rows
        ],
        update_conflicts=True,
        unique_fields=["hour", "account", "api_key_id", "model"],
        update_fields=[
            "requests",
            "errors",
            "prompt_tokens",
            "cached_tokens",
            "cache_write_tokens",
            "completion_tokens",
            "reasoning_tokens",
            "cost_usd",
        ],
    )
    return len(rows)
