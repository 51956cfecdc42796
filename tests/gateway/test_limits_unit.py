"""Admission's parts on their own: budget windows, refusals, the in-process limiter."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.catalogue import Prices
from gateway.limiter import Reservation, Verdict
from gateway.limiter_local import LocalLimiter
from gateway.limits import Ask, key_windows, output_cap, ratelimit_header_bytes, refusal
from usage.budgets import budget_windows

ASK = Ask(10, 1_000, 5, "max_tokens", cap_set=True)


@dataclass
class Key:
    id: int = 7
    timezone: str = "UTC"
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    quota_usd: Decimal | None = None
    daily_budget_usd: Decimal | None = None
    monthly_budget_usd: Decimal | None = None
    account_id: int = 3
    credited_micros: int | None = None


@dataclass
class Entry:
    reservation: Reservation
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal


def reserve(limiter, key, tokens=0, cost=0, windows=(), request_id="r"):
    reservation = Reservation(
        key.id,
        key.account_id,
        request_id,
        limiter.name,
        0,
        tokens,
        cost,
        tuple(w.key for w in windows),
    )
    verdict = asyncio.run(limiter.admit(key, reservation, list(windows)))
    reservation.admitted_ms = verdict.admitted_ms
    return verdict, reservation


def test_budget_windows_follow_the_account_calendar():
    key = Key(timezone="Asia/Tokyo", daily_budget_usd=Decimal(1), monthly_budget_usd=Decimal(10))
    at = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)  # 00:30 on Dec 1 in Tokyo

    daily, monthly = budget_windows(key, at)

    assert daily.key == "pb:{a3}:spend:7:d:20261201"
    assert daily.start.isoformat() == "2026-12-01T00:00:00+09:00"
    assert daily.resets_at.isoformat() == "2026-12-02T00:00:00+09:00"
    assert monthly.key == "pb:{a3}:spend:7:m:202612"
    assert monthly.resets_at.isoformat() == "2027-01-01T00:00:00+09:00"
    assert daily.limit_micros == 1_000_000


def test_remembered_windows_last_until_the_first_reset_or_a_budget_change():
    key = Key(id=8, timezone="Asia/Tokyo", daily_budget_usd=Decimal(1), monthly_budget_usd=None)
    evening = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo

    first = key_windows(key, evening)
    assert key_windows(key, datetime(2026, 11, 30, 14, 59, tzinfo=UTC)) is first
    # Tokyo's midnight: a new daily window.
    (after,) = key_windows(key, datetime(2026, 11, 30, 15, 0, tzinfo=UTC))
    assert after.key == "pb:{a3}:spend:8:d:20261201"
    # The clock moved back (tests do): computed again, not taken from the cache.
    (back,) = key_windows(key, evening)
    assert back.key == "pb:{a3}:spend:8:d:20261130"
    # The budget changed: computed again.
    key.daily_budget_usd = Decimal(2)
    (raised,) = key_windows(key, evening)
    assert raised.limit_micros == 2_000_000
    key.monthly_budget_usd = Decimal(10)
    assert [w.name for w in key_windows(key, evening)] == ["daily", "monthly"]


def test_the_output_cap_is_the_requests_own_else_the_models_default():
    class Model:
        default_max_output_tokens = 4096

    assert output_cap({"max_tokens": 100}, Model) == 100
    # Both chat names set: the larger is reserved, as an upstream may read either.
    assert output_cap({"max_completion_tokens": 50, "max_tokens": 100}, Model) == 100
    assert output_cap({"max_output_tokens": 70}, Model) == 70
    assert output_cap({}, Model) == 4096


def test_the_local_limiter_admits_exactly_rpm_requests_a_minute():
    limiter = LocalLimiter("local")
    key = Key(rpm_limit=3)

    verdicts = [reserve(limiter, key, request_id=str(i))[0].status for i in range(5)]

    assert verdicts == ["ok", "ok", "ok", "rpm", "rpm"]


def test_the_local_limiter_refuses_tokens_over_tpm_and_settles_them_down():
    limiter = LocalLimiter("local")
    key = Key(tpm_limit=1000)
    first, reservation = reserve(limiter, key, tokens=800)
    assert first.status == "ok"
    assert reserve(limiter, key, tokens=300)[0].status == "tpm"

    limiter.settle([Entry(reservation, 100, 50, Decimal(0))])

    assert reserve(limiter, key, tokens=300)[0].status == "ok"


def test_the_local_limiter_settles_budgets_both_ways():
    limiter = LocalLimiter("local")
    key = Key(daily_budget_usd=Decimal(1))
    [window] = budget_windows(key, datetime.now(UTC))
    limiter._spend[window.key] = (0, None)
    _, cheap = reserve(limiter, key, cost=600_000, windows=[window], request_id="a")
    limiter.settle([Entry(cheap, 10, 10, Decimal("0.1"))])  # reserved 0.60, cost 0.10
    _, dear = reserve(limiter, key, cost=100_000, windows=[window], request_id="b")
    limiter.settle([Entry(dear, 10, 10, Decimal("0.3"))])  # reserved 0.10, cost 0.30

    assert limiter._spend[window.key][0] == 400_000
    verdict, _ = reserve(limiter, key, cost=700_000, windows=[window], request_id="c")
    assert (verdict.status, verdict.spent_micros) == ("budget", 400_000)


def test_an_exhausted_budget_says_which_how_much_when_and_not_to_retry():
    key = Key(timezone="Europe/Paris", daily_budget_usd=Decimal(1))
    windows = budget_windows(key, datetime(2026, 11, 25, 10, tzinfo=UTC))

    error = refusal(
        key, Verdict("budget", window_index=0, spent_micros=1_000_000), windows, ASK, {}
    )

    assert error.status == 429
    assert error.code == "insufficient_quota"
    assert error.headers["x-should-retry"] == "false"
    assert "daily budget is used up: limit $1.00, spent $1.00" in error.message
    assert "2026-11-26T00:00+01:00" in error.message


def test_a_rate_limit_says_when_to_retry():
    error = refusal(Key(rpm_limit=60), Verdict("rpm", retry_after_ms=1500), [], ASK, {})

    assert error.code == "rate_limit_exceeded"
    assert error.headers["retry-after"] == "2"


def test_a_request_bigger_than_tpm_is_told_not_to_retry():
    ask = Ask(500, 0, 4096, "max_output_tokens", cap_set=False)
    error = refusal(Key(tpm_limit=100), Verdict("tpm", retry_after_ms=60_000), [], ask, {})

    assert error.headers["x-should-retry"] == "false"
    assert error.message == (
        "Request too large for this key's tokens per minute: limit 100, requested 500 "
        "(the prompt plus the model's default of 4096 output tokens, as no "
        "max_output_tokens was set). Lower max_output_tokens or the prompt."
    )


def test_a_budget_with_money_left_names_the_requests_worst_case_and_what_to_lower():
    key = Key(daily_budget_usd=Decimal("0.05"))
    windows = budget_windows(key, datetime(2026, 11, 25, 10, tzinfo=UTC))
    ask = Ask(4107, 41_071, 4096, "max_tokens", cap_set=False)
    error = refusal(key, Verdict("budget", window_index=0, spent_micros=22_000), windows, ask, {})

    assert error.code == "insufficient_quota"
    assert error.headers["x-should-retry"] == "false"
    assert error.message == (
        "This request could cost up to $0.041071 (the prompt plus the model's default of "
        "4096 output tokens, as no max_tokens was set), more than the $0.028 left of this "
        "key's daily budget: limit $0.05, spent $0.022. It resets at 2026-11-26T00:00+00:00. "
        "A lower max_tokens may fit now."
    )


def test_ratelimit_headers_count_down():
    headers = dict(
        ratelimit_header_bytes(
            Key(rpm_limit=60, tpm_limit=1000), Verdict("ok", requests=3, tokens=250)
        )
    )

    assert headers[b"x-ratelimit-remaining-requests"] == b"57"
    assert headers[b"x-ratelimit-remaining-tokens"] == b"750"
    assert headers[b"x-ratelimit-reset-requests"] == b"1m0s"


def test_a_client_gone_during_admission_stops_the_request_after_the_verdict(monkeypatch):
    """The disconnect watcher leaves a request in admission alone (Redis
    reserves whether or not anyone waits); admission stops the request once
    the verdict is in, keeping the reservation for its record to release."""
    from gateway import limits

    async def slow_decide(key, reservation, windows):
        assert usage.req.admitting
        usage.req.disconnected = True  # the client leaves while Redis decides
        await asyncio.sleep(0.05)
        return Verdict("ok", admitted_ms=1234)

    monkeypatch.setattr(limits, "_decide", slow_decide)

    class Model:
        default_max_output_tokens = 10
        prices = Prices(input=Decimal(1), cached_input=Decimal(1), output=Decimal(1))

    usage = type("U", (), {"reservation": None, "prompt_estimate": 0})()
    usage.req = type(
        "R",
        (),
        {"request_id": "pb-gone", "extra_headers": [], "admitting": False, "disconnected": False},
    )()
    key = Key(daily_budget_usd=Decimal(5))

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(limits.admit(key, Model, usage, prompt=("hi", 1), body={}))

    assert not usage.req.admitting
    assert usage.reservation is not None
    assert usage.reservation.admitted_ms == 1234


def _reserved(monkeypatch, prices: Prices, body: dict, choices: int = 1) -> Reservation:
    """What admission reserves for `body` (prompt "hi", one message) against a
    key with a daily budget."""
    from gateway import limits

    async def decide(key, reservation, windows):
        return Verdict("ok", admitted_ms=1)

    monkeypatch.setattr(limits, "_decide", decide)

    class Model:
        default_max_output_tokens = 100

    Model.prices = prices  # type: ignore[attr-defined]
    usage = type("U", (), {"reservation": None, "prompt_estimate": 0})()
    usage.req = type(
        "R",
        (),
        {"request_id": "pb-n", "extra_headers": [], "admitting": False, "disconnected": False},
    )()
    key = Key(daily_budget_usd=Decimal(5), tpm_limit=10**9)
    asyncio.run(limits.admit(key, Model, usage, prompt=("hi", 1), body=body, choices=choices))
    return usage.reservation


def test_each_choice_of_n_is_reserved_whole(monkeypatch):
    prices = Prices(input=Decimal(0), cached_input=Decimal(0), output=Decimal(10))

    one = _reserved(monkeypatch, prices, {"max_tokens": 10})
    many = _reserved(monkeypatch, prices, {"max_tokens": 10, "n": 1000}, choices=1000)

    assert one.cost_micros == 100  # 10 tokens at $10 per million
    assert many.cost_micros == 100_000
    assert many.tokens - one.tokens == 10 * 999


def test_the_prompt_is_reserved_at_the_cache_write_price_when_that_is_dearer(monkeypatch):
    plain = Prices(input=Decimal(3), cached_input=Decimal("0.3"), output=Decimal(0))
    cached = Prices(
        input=Decimal(3), cached_input=Decimal("0.3"), output=Decimal(0), cache_write=Decimal(6)
    )

    at_input = _reserved(monkeypatch, plain, {"max_tokens": 1})
    at_write = _reserved(monkeypatch, cached, {"max_tokens": 1})

    prompt = at_input.tokens - 1
    assert at_input.cost_micros == prompt * 3
    assert at_write.cost_micros == prompt * 6
