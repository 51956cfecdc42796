"""The overview: this account's keys, requests and spend, in its time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import count

import pytest

from usage.models import UsageRecord
from usage.selectors import period_starts, usage_summary

_ids = count()


@pytest.fixture
def record():
    def make(account, key, at: datetime, cost: str = "0.01", **fields) -> UsageRecord:
        return UsageRecord.objects.create(
            created_at=at,
            account=account,
            api_key=key,
            endpoint="chat.completions",
            model=fields.pop("model", "gpt-test"),
            status=fields.pop("status", 200),
            cost_usd=Decimal(cost),
            prompt_tokens=10,
            completion_tokens=5,
            request_id=f"pb-{next(_ids)}-{at.timestamp()}",
            **fields,
        )

    return make


def test_today_and_this_month_start_at_midnight_in_the_accounts_zone():
    now = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)  # 01:00 on March 10 in Tokyo

    day, month = period_starts("Asia/Tokyo", now)

    assert day == datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
    assert month == datetime(2026, 2, 28, 15, 0, tzinfo=UTC)


def test_summary_counts_requests_and_spend_by_the_accounts_calendar(account, make_key, record):
    account.timezone = "Asia/Tokyo"
    account.save()
    key, _ = make_key()
    now = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
    record(account, key, datetime(2026, 3, 9, 15, 30, tzinfo=UTC), "0.25")  # today in Tokyo
    record(account, key, datetime(2026, 3, 9, 14, 30, tzinfo=UTC), "1.00")  # yesterday there
    record(account, key, datetime(2026, 2, 28, 14, 59, tzinfo=UTC), "9.00")  # last month there

    summary = usage_summary(account=account, now=now)

    assert (summary.today.requests, summary.today.cost_usd) == (1, Decimal("0.25"))
    assert (summary.month.requests, summary.month.cost_usd) == (2, Decimal("1.25"))
    assert summary.month.tokens == 30


def test_overview_shows_the_accounts_own_keys_spend_and_requests(
    owner_client, owner, owner_key, outsider, make_key, record
):
    from django.utils import timezone

    key, _ = owner_key
    other_key, _ = make_key(account=outsider.account, name="outsider-key")
    record(owner.account, key, timezone.now(), "1.50", model="owner-model")
    record(outsider.account, other_key, timezone.now(), "7.77", model="outsider-model")

    page = owner_client.get("/").content.decode()

    assert "Overview" in page
    assert "ci-runner" in page
    assert "$1.50" in page
    assert "owner-model" in page
    assert "outsider-key" not in page
    assert "outsider-model" not in page
    assert "$7.77" not in page


def test_overview_of_a_new_account_says_what_to_do_first(owner_client):
    page = owner_client.get("/").content.decode()

    assert "Create your first API key" in page
    assert "No requests yet" in page


def test_signed_out_home_is_the_landing_page(anonymous_client):
    page = anonymous_client.get("/").content.decode()

    assert 'href="/signup/"' in page
    assert 'href="/login/"' in page
