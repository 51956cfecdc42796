"""The key list and key page show usage against each limit, and refusals with their reason."""

from decimal import Decimal

import pytest
from django.utils import timezone

from keys.models import ApiKey
from usage.models import UsageRecord


def _spend(key: ApiKey, usd: str, **fields) -> None:
    UsageRecord.objects.create(
        created_at=timezone.now(),
        account=key.account,
        api_key=key,
        endpoint="chat.completions",
        model="m",
        status=fields.pop("status", 200),
        cost_usd=Decimal(usd),
        request_id=f"pb-{UsageRecord.objects.count()}",
        **fields,
    )


@pytest.fixture
def key(owner_key) -> ApiKey:
    return owner_key[0]


@pytest.mark.django_db
def test_the_key_page_shows_a_bar_per_budget_with_what_is_spent(owner_client, key):
    owner_key = key
    owner_key.daily_budget_usd = Decimal(1)
    owner_key.quota_usd = Decimal(10)
    owner_key.save()
    _spend(owner_key, "0.85")

    page = owner_client.get(f"/keys/{owner_key.id}/").content.decode()

    assert "$0.85 of $1.00" in page
    assert "meter-warn" in page  # 85% of the daily budget
    assert "$0.85 of $10.00" in page
    assert 'aria-valuenow="85"' in page


@pytest.mark.django_db
def test_the_key_list_shows_compact_meters(owner_client, key):
    owner_key = key
    owner_key.monthly_budget_usd = Decimal(2)
    owner_key.rpm_limit = 60
    owner_key.save()
    _spend(owner_key, "2.50")

    page = owner_client.get("/keys/").content.decode()

    assert "meters-compact" in page
    assert "meter-full" in page
    assert "Requests, last minute" in page


@pytest.mark.django_db
def test_a_refused_request_shows_its_reason_on_the_key_page(owner_client, key):
    owner_key = key
    _spend(owner_key, "0", status=429, error_type="insufficient_quota")

    page = owner_client.get(f"/keys/{owner_key.id}/").content.decode()

    assert "budget, quota or balance used up" in page


@pytest.mark.django_db
def test_a_refusal_names_the_window_that_was_used_up(owner_client, key):
    _spend(key, "0", status=429, error_type="insufficient_quota:daily")
    _spend(key, "0", status=429, error_type="insufficient_quota:balance")

    page = owner_client.get(f"/keys/{key.id}/").content.decode()

    assert "daily budget used up" in page
    assert "balance used up" in page


@pytest.mark.django_db
def test_a_tiny_budget_and_its_spend_show_every_digit_to_the_micro_dollar(owner_client, key):
    key.daily_budget_usd = Decimal("0.00001")
    key.quota_usd = Decimal("3")
    key.save()
    _spend(key, "0.000008")
    _spend(key, "1.2")

    detail = owner_client.get(f"/keys/{key.id}/").content.decode()
    listing = owner_client.get("/keys/").content.decode()

    assert "$1.200008 of $0.00001" in detail  # the daily meter, past its budget
    assert "$1.200008 of $3.00" in detail
    assert "of $0.00001 daily budget" in detail
    assert "$0.00001/day" in listing and "$1.200008" in listing
