"""Retention: raw records past PUREBRIDGE_USAGE_RETENTION_DAYS are purged, and
no figure moves: the total quota, the monthly budget, the gateway's rebuilt
counters, the usage page's export and the books all read the rollups where the
records are gone (usage/spend.py)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models import F
from django.utils import timezone

from billing.models import LedgerEntry
from billing.services import ledger_post, reconcile
from gateway.auth import _load
from gateway.limiter import spent_in
from gateway.limits import key_windows
from tests.helpers import usage_entry
from usage import reports
from usage.budgets import now
from usage.models import UsageHourly, UsageRecord, Watermark
from usage.recorder import _write
from usage.retention import usage_purge
from usage.selectors import key_spend
from usage.services import usage_rollup
from usage.spend import PURGED, purged_before, window_spent
from usage.watermarks import BEGINNING

_ids = itertools.count(1)
DAYS_AGO = (100, 100, 60, 40, 3, 1, 0, 0)  # a record each, at these ages


@pytest.fixture
def history(account, make_key, settings):
    """A key with a quota and a monthly budget whose records reach 100 days
    back, each costing an odd fraction of a micro-dollar, debited from a
    credited balance as the usage writer debits them; rolled up."""
    settings.PUREBRIDGE_USAGE_RETENTION_DAYS = 35
    ledger_post(
        account_id=account.id,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=Decimal("100"),
        source="test:credit",
    )
    key, _ = make_key(quota_usd=Decimal("100"), monthly_budget_usd=Decimal("50"))
    at = timezone.now()
    _write(
        [
            usage_entry(
                key,
                f"pb-old-{next(_ids)}",
                created_at=at - timedelta(days=days, minutes=i),
                cost_usd=Decimal("0.123456789012") * (i + 1),
                prompt_tokens=10 * (i + 1),
            )
            for i, days in enumerate(DAYS_AGO)
        ]
    )
    written_when_made()
    usage_rollup()
    return key


def written_when_made() -> None:
    """Each record written when its request was made, as the usage writer writes
    them (retention finds old records by when they were written)."""
    UsageRecord.objects.update(recorded_at=F("created_at"))


def figures(key) -> dict:
    """Every figure that reads the usage: the key's spend windows, the
    gateway's rebuilt counters, the usage page's table and export over all of
    it, the books."""
    info = _load(key.lookup)
    spend = key_spend(key_id=key.id, tz_name="UTC")
    today = timezone.now().date()
    utc = ZoneInfo("UTC")
    span = reports.span_for("custom", utc, timezone.now(), today - timedelta(days=120), today)
    page = reports.Filters(span=span, group="key")
    return {
        "total": window_spent(key.id, None),
        "month": spend.month,
        "today": spend.today,
        "counters": [spent_in(info, w) for w in key_windows(info, now())],
        "table": reports.table(key.account, page),
        "export": list(reports.export_rows(key.account, page, reports.key_names(key.account))),
        "books": reconcile(),
    }


def test_a_purge_deletes_old_records_and_moves_no_figure(history, account):
    before = figures(history)
    assert before["books"] == []
    assert before["total"] == sum(Decimal("0.123456789012") * (i + 1) for i in range(len(DAYS_AGO)))

    deleted = usage_purge(batch=2)  # small batches: the loop, not one statement

    assert deleted == 4  # the records 100, 60 and 40 days old
    assert UsageRecord.objects.count() == len(DAYS_AGO) - 4
    boundary = purged_before()
    assert boundary is not None and boundary.minute == boundary.second == 0
    assert not UsageRecord.objects.filter(created_at__lt=boundary).exists()
    assert figures(history) == before

    # A rollup re-reading every record recomputes no hour before the boundary.
    usage_rollup(since=BEGINNING)
    assert figures(history) == before
    assert UsageHourly.objects.filter(hour__lt=boundary).count() == 3  # two records share an hour
    # And a second purge has nothing more to do.
    assert usage_purge() == 0


def test_nothing_is_purged_past_what_the_rollup_has_folded(account, make_key, settings):
    """The rollup never ran: nothing is known to be folded, nothing goes. Its
    watermark held back 40 days: the boundary stops a day (records written
    late) and the rollup's overlap before it."""
    settings.PUREBRIDGE_USAGE_RETENTION_DAYS = 35
    key, _ = make_key()
    at = timezone.now()
    _write(
        [
            usage_entry(key, f"pb-{n}", created_at=at - timedelta(days=days))
            for n, days in enumerate((90, 45, 38))
        ]
    )
    written_when_made()
    assert usage_purge() == 0
    assert purged_before() is None

    usage_rollup()
    Watermark.objects.filter(name="usage-rollup").update(position=at - timedelta(days=40))
    assert usage_purge() == 2  # 90 and 45 days old; 38 is past what is folded
    boundary = Watermark.objects.get(name=PURGED).position
    assert at - timedelta(days=42) < boundary <= at - timedelta(days=41)
