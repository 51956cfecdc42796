"""GET /v1/key: a key's own limits, spend, remaining budgets and balance."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.services import ledger_post
from keys.services import key_set_active
from usage import budgets
from usage.budgets import budget_windows
from usage.models import UsageRecord
from usage.selectors import period_starts

TOKYO = ZoneInfo("Asia/Tokyo")
# 21:00 on 2026-03-15 in Tokyo: that day's and that month's records are "today"
# and "this month" there (not in UTC, where it is still noon).
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(budgets, "now", lambda: NOW)


@pytest.fixture
def tokyo(account):
    account.timezone = "Asia/Tokyo"
    account.save()
    return account


def spend(key, usd: str, at: datetime) -> None:
    UsageRecord.objects.create(
        created_at=at,
        account=key.account,
        api_key=key,
        endpoint="chat.completions",
        model="m",
        status=200,
        cost_usd=Decimal(usd),
        request_id=f"pb-test-{UsageRecord.objects.count()}",
    )


def get(http, secret: str | None, method: str = "GET"):
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return http.request(method, "/v1/key", headers=headers)


def test_a_key_reads_its_limits_spend_and_balance(http, tokyo, make_key, frozen):
    key, secret = make_key(
        name="codex-laptop",
        rpm_limit=60,
        tpm_limit=200_000,
        daily_budget_usd=Decimal("2"),
        monthly_budget_usd=Decimal("30.5"),
        quota_usd=Decimal("100"),
        expires_at=datetime(2099, 12, 31, 15, 0, tzinfo=UTC),
    )
    spend(key, "0.500000000001", datetime(2026, 3, 15, 10, 0, tzinfo=TOKYO))  # today in Tokyo
    spend(key, "0.25", datetime(2026, 3, 14, 23, 30, tzinfo=TOKYO))  # yesterday, this month
    spend(key, "0.125", datetime(2026, 2, 28, 23, 59, tzinfo=TOKYO))  # last month
    other, _ = make_key(name="other")
    spend(other, "9", datetime(2026, 3, 15, 10, 0, tzinfo=TOKYO))
    ledger_post(account_id=tokyo.id, kind="adjustment", amount=Decimal("12.5"), source="t:1")

    response = get(http, secret)

    assert response.status_code == 200
    assert response.json() == {
        "object": "api_key",
        "id": key.id,
        "name": "codex-laptop",
        "prefix": key.display_prefix,
        "allowed_models": None,
        "limits": {
            "rpm": 60,
            "tpm": 200_000,
            "daily_budget_usd": "2",
            "monthly_budget_usd": "30.5",
            "quota_usd": "100",
            "expires_at": "2100-01-01T00:00:00+09:00",
        },
        "spend": {
            "time_zone": "Asia/Tokyo",
            "today_usd": "0.500000000001",
            "today_started_at": "2026-03-15T00:00:00+09:00",
            "this_month_usd": "0.750000000001",
            "this_month_started_at": "2026-03-01T00:00:00+09:00",
            "total_usd": "0.875000000001",
        },
        "remaining": {
            "daily_budget_usd": "1.499999999999",
            "daily_budget_resets_at": "2026-03-16T00:00:00+09:00",
            "monthly_budget_usd": "29.749999999999",
            "monthly_budget_resets_at": "2026-04-01T00:00:00+09:00",
            "quota_usd": "99.124999999999",
        },
        "balance": {"amount_usd": "12.5", "blocked_reason": None},
    }


def test_a_key_without_limits_reports_none_and_a_zero_balance(http, make_key):
    _, secret = make_key(allowed_models=["b-model", "a-model"])

    body = get(http, secret).json()

    assert body["limits"] == {
        "rpm": None,
        "tpm": None,
        "daily_budget_usd": None,
        "monthly_budget_usd": None,
        "quota_usd": None,
        "expires_at": None,
    }
    assert set(body["remaining"].values()) == {None}
    assert body["spend"]["total_usd"] == "0"
    assert body["allowed_models"] == ["a-model", "b-model"]
    assert body["balance"] == {"amount_usd": "0", "blocked_reason": None}


def test_remaining_never_goes_below_zero(http, make_key):
    key, secret = make_key(daily_budget_usd=Decimal("1"))
    spend(key, "1.2", datetime.now(UTC))

    remaining = get(http, secret).json()["remaining"]

    assert remaining["daily_budget_usd"] == "0"


def test_a_debt_and_a_blocked_account_are_shown(http, account, make_key):
    from billing.models import Balance

    _, secret = make_key()
    ledger_post(account_id=account.id, kind="usage", amount=Decimal("-3.25"), source="t:debt")
    Balance.objects.filter(account=account).update(blocked_reason="A payment is disputed.")

    balance = get(http, secret).json()["balance"]

    assert balance == {"amount_usd": "-3.25", "blocked_reason": "A payment is disputed."}


def test_the_answer_carries_the_request_id_and_is_not_cached(http, api_key):
    response = get(http, api_key)

    assert response.headers["x-purebridge-request-id"].startswith("pb-")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"


def test_a_missing_key_is_401_in_the_openai_shape(http, account):
    response = get(http, None)

    assert response.status_code == 401
    assert response.headers["x-purebridge-request-id"].startswith("pb-")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")


def test_a_wrong_secret_is_401(http, api_key):
    response = get(http, api_key[:-4] + "zzzz")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_disabled_key_is_401(http, make_key):
    key, secret = make_key()
    key_set_active(api_key=key, active=False)

    response = get(http, secret)

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This API key has been disabled."


def test_post_is_405_with_allow(http, api_key):
    response = get(http, api_key, method="POST")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_the_call_is_recorded_at_no_cost(http, make_key, usage_records):
    key, secret = make_key()

    request_id = get(http, secret).headers["x-purebridge-request-id"]

    [record] = [r for r in usage_records() if r.request_id == request_id]
    assert (record.endpoint, record.api_key_id, record.status) == ("key", key.id, 200)
    assert record.cost_usd == 0


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Asia/Kolkata", "America/New_York", "UTC"])
@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 3, 8, 6, 30, tzinfo=UTC),  # New York's clocks went forward at 07:00 UTC
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # its hour that repeats
        datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
    ],
)
def test_spend_periods_start_where_the_budget_windows_do(zone, at):
    class Key:
        id = account_id = 1
        timezone = zone
        daily_budget_usd = monthly_budget_usd = Decimal(1)
        quota_usd = None

    daily, monthly = budget_windows(Key, at)

    assert period_starts(zone, at) == (daily.start, monthly.start)
    assert daily.start <= at < daily.resets_at
    assert monthly.start <= at < monthly.resets_at


def test_a_key_changed_in_the_console_reads_its_new_limits(http, make_key):
    from keys.services import key_update

    key, secret = make_key(rpm_limit=10)
    get(http, secret)
    key_update(api_key=key, rpm_limit=20)

    assert get(http, secret).json()["limits"]["rpm"] == 20
