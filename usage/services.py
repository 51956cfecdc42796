"""Folding usage records into hourly and daily aggregates, and budget alerts."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import TruncHour

from accounts.selectors import account_alert_email, email_is_valid
from keys.models import ApiKey
from purebridge.mail import send_once
from usage import budgets
from usage.budgets import MICROS, budget_windows
from usage.emails import budget_alert
from usage.models import BudgetAlert, UsageRecord
from usage.rollups import rollup_touched
from usage.spend import purged_before, window_spent
from usage.watermarks import reading

log = logging.getLogger(__name__)
ROLLUP = "usage-rollup"
ALERT_SWEEP = "budget-alerts"


def usage_rollup(*, since: datetime | None = None) -> int:
    """Recompute every hour, and every day in the account's time zone, touched
    by the records written since the last run (usage/watermarks.py), or since
    `since` if that is earlier, in one transaction with the watermark
    (usage/rollups.py). Returns the hourly rows written.

    Idempotent: a run killed midway leaves nothing (its transaction rolls
    back) and the next run, or the same task delivered again, redoes it.
    """
    with reading(ROLLUP, since=since) as start:
        pairs = (
            UsageRecord.objects.filter(
                recorded_at__gte=start, account__isnull=False, api_key__isnull=False
            )
            .annotate(h=TruncHour("created_at"))
            .values_list("h", "account_id")
            # Without order_by() the model's ordering (created_at) would join
            # the DISTINCT and return every record instead of every hour.
            .order_by()
            .distinct()
        )
        # Hours before the retention boundary are final: their records are
        # purged, or being purged (usage/retention.py).
        purged = purged_before()
        touched: dict[datetime, set[int]] = defaultdict(set)
        for hour, account_id in pairs:
            if purged is None or hour >= purged:
                touched[hour].add(account_id)
        hourly, _ = rollup_touched(touched)
        return hourly


THRESHOLDS = (50, 80, 100)  # percent of a budget that trigger an email


def budget_alerts_send(*, key_id: int) -> int:
    """Email the key's owner about every budget window that has crossed a new
    threshold; each threshold of each window at most once. Returns emails sent."""
    key = ApiKey.objects.select_related("account").filter(id=key_id).first()
    if key is None:
        return 0
    at = budgets.now()
    sent = 0
    for window in budget_windows(key, at):
        spent = window_spent(key.id, window.start)
        limit = Decimal(window.limit_micros) / MICROS
        crossed = [t for t in THRESHOLDS if limit > 0 and spent * 100 >= limit * t]
        if crossed and _claim_and_mail(key, window, crossed, spent, limit, at):
            sent += 1
    return sent


def _period(window, at: datetime, tz: str) -> str:
    local = at.astimezone(ZoneInfo(tz))
    return {"daily": f"{local:%Y-%m-%d}", "monthly": f"{local:%Y-%m}"}.get(window.name, "total")


def _claim_and_mail(key: ApiKey, window, crossed: list[int], spent, limit, at: datetime) -> bool:
    """Claim the crossed thresholds not mailed yet and send one email for the
    highest, once (purebridge.mail.send_once)."""
    recipient = _recipient(key)
    period = _period(window, at, key.timezone)

    def email(fresh: list[int]) -> EmailMultiAlternatives | None:
        if not fresh or not recipient:
            return None
        return budget_alert(
            key,
            window=window.name,
            period=period,
            threshold=max(fresh),
            spent=spent,
            limit=limit,
            resets_at=window.resets_at,
            recipient=recipient,
        )

    return send_once(lambda: _claim(key, window, period, crossed, spent, limit, recipient), email)


def _claim(key: ApiKey, window, period: str, crossed, spent, limit, recipient) -> list[int]:
    """The crossed thresholds this check is first to claim."""
    fresh = []
    for threshold in crossed:
        try:
            with transaction.atomic():
                BudgetAlert.objects.create(
                    api_key=key,
                    window=window.name,
                    period=period,
                    threshold=threshold,
                    spent_usd=spent,
                    limit_usd=limit,
                    recipient=recipient,
                )
            fresh.append(threshold)
        except IntegrityError:
            continue
    return fresh


def budget_alerts_sweep(*, check: Callable[[int], object]) -> int:
    """Hand `check` every key with a budget or quota that was charged since the
    last sweep (usage/watermarks.py): a threshold crossed while the broker was
    down, or whose check was lost, is found here. The watermark moves only once
    every key was handed over; a sweep that fails midway hands them all over
    again. Returns how many keys."""
    with reading(ALERT_SWEEP) as start:
        charged = UsageRecord.objects.filter(
            recorded_at__gte=start, api_key__isnull=False, cost_usd__gt=0
        ).values("api_key_id")
        keys = list(
            ApiKey.objects.filter(_HAS_BUDGET, id__in=charged)
            .order_by("id")
            .values_list("id", flat=True)
        )
        for key_id in keys:
            check(key_id)
    return len(keys)


_HAS_BUDGET = (
    Q(daily_budget_usd__isnull=False)
    | Q(monthly_budget_usd__isnull=False)
    | Q(quota_usd__isnull=False)
)


def _recipient(key: ApiKey) -> str:
    """The key's notification email, else the account's default (its
    profile's, else its owner's), read when the alert is sent: a key left
    empty follows later changes of the profile."""
    if email_is_valid(key.notification_email):
        return key.notification_email
    return account_alert_email(key.account)
