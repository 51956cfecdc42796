"""Budget windows are calendar days and months in the account's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import post_chat
from tests.limits.support import FLAT_COST, FLAT_RESERVED, chat, spend_counter

TOKYO = ZoneInfo("Asia/Tokyo")


class Clock:
    at = datetime.now(UTC)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The clock budget windows are computed from (the in-process server shares
    it): usage.budgets.now, which admit() reads as gateway.limits.now."""
    clock = Clock()
    monkeypatch.setattr("usage.budgets.now", lambda: clock.at)
    monkeypatch.setattr("gateway.limits.now", lambda: clock.at)
    return clock


@pytest.fixture
def tokyo_account(account):
    account.timezone = "Asia/Tokyo"
    account.save()
    return account


def test_the_daily_budget_resets_at_local_midnight_and_the_monthly_one_counts_both_days(
    http, tokyo_account, make_key, models, clock, usage_records, redis_client
):
    """Each request reserves $0.058 and costs $0.038. Daily $0.10: two requests a
    day. Monthly $0.15: three in all. 23:59:50 in Tokyo is 14:59:50 UTC, so the
    UTC date does not change at the local midnight. The day is in the future:
    the records written now (by the real clock) belong to neither day, and both
    counters start from zero."""
    key, secret = make_key(daily_budget_usd=Decimal("0.10"), monthly_budget_usd=Decimal("0.15"))
    day = date(datetime.now(UTC).year + 1, 3, 14)
    evening = datetime.combine(day, time(23, 59, 50), TOKYO)
    morning = datetime.combine(day + timedelta(days=1), time(0, 0, 5), TOKYO)
    assert evening.astimezone(UTC).date() == morning.astimezone(UTC).date()
    assert FLAT_COST + FLAT_RESERVED <= 100_000 < 2 * FLAT_COST + FLAT_RESERVED

    def send():
        response = post_chat(http, secret, chat("flat", max_tokens=5))
        usage_records()  # settled before the next one
        return response

    clock.at = evening
    late = [send() for _ in range(3)]
    clock.at = morning
    early = [send() for _ in range(2)]

    assert [r.status_code for r in late] == [200, 200, 429]
    daily = late[2].json()["error"]
    assert daily["code"] == "insufficient_quota"
    # $0.024 is left, less than a request's worst case: named, with what to lower.
    assert daily["message"] == (
        "This request could cost up to $0.058 (the prompt plus max_tokens=5), more than "
        "the $0.024 left of this key's daily budget: limit $0.10, spent $0.076. "
        f"It resets at {day + timedelta(days=1)}T00:00+09:00. A lower max_tokens may fit now."
    )
    assert [r.status_code for r in early] == [200, 429]
    monthly = early[1].json()["error"]
    assert monthly["message"] == (
        "This request could cost up to $0.058 (the prompt plus max_tokens=5), more than "
        "the $0.036 left of this key's monthly budget: limit $0.15, spent $0.114. "
        f"It resets at {day.replace(month=4, day=1)}T00:00+09:00. A lower max_tokens may fit now."
    )
    assert spend_counter(redis_client, key, "d", evening) == 2 * FLAT_COST
    assert spend_counter(redis_client, key, "d", morning) == FLAT_COST
    assert spend_counter(redis_client, key, "m", morning) == 3 * FLAT_COST


@pytest.fixture(params=["redis", "embedded"])
def backend(request, settings) -> str:
    """Admission on Redis (the Lua script) or, with no REDIS_URL, in process."""
    if request.param == "embedded":
        from gateway import limiter_local

        settings.REDIS_URL = ""
        limiter_local.limiter.clear()
    return request.param


@pytest.mark.parametrize(
    "budgets",
    [
        {"daily_budget_usd": Decimal("1"), "monthly_budget_usd": Decimal("5")},
        {
            "daily_budget_usd": Decimal("1"),
            "monthly_budget_usd": Decimal("5"),
            "quota_usd": Decimal("20"),
        },
    ],
    ids=["daily+monthly", "daily+monthly+total"],
)
def test_the_first_request_of_a_key_with_several_budgets_is_admitted(
    http, make_key, models, backend, budgets
):
    """No counter exists yet (a new key, the first day of a month, Redis
    restarted): each is rebuilt from the usage records, none is used up."""
    key, secret = make_key(**budgets)

    response = post_chat(http, secret, chat("flat", max_tokens=5))

    assert response.status_code == 200, response.text
