"""Admission under production shape: two gunicorn worker processes sharing one
real Redis, many clients at once."""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from tests.helpers import wait_for
from tests.limits.support import (
    FLAT_COST,
    FLAT_RESERVED,
    ODD_INPUT,
    PROMPT,
    chat,
    fire,
    gunicorn_in,
    micros,
    recorded_micros,
    records_of,
    spend_counter,
)


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, tmp_path_factory):
    with gunicorn_in(tmp_path_factory, "gunicorn") as server:
        yield server


@pytest.fixture(scope="module")
def second_host(django_db_setup, tmp_path_factory):
    """Another gateway, as on a second host: same PostgreSQL and Redis."""
    with gunicorn_in(tmp_path_factory, "gunicorn-2") as server:
        yield server


def wait_for_records(key, count: int) -> list:
    """The key's usage records once the workers have written `count` of them."""
    wait_for(lambda: len(records_of(key)) >= count, timeout=15)
    return records_of(key)


def test_rpm_60_admits_exactly_60_of_100_requests_from_50_clients_on_two_hosts(
    gunicorn, second_host, make_key, models, fake_upstream
):
    key, secret = make_key(rpm_limit=60)

    with ThreadPoolExecutor(2) as pool:
        hosts = [
            pool.submit(fire, url, secret, [chat("flat")] * 50, concurrency=25)
            for url in (gunicorn.url, second_host.url)
        ]
        responses = [response for host in hosts for response in host.result()]

    assert Counter(r.status_code for r in responses) == {200: 60, 429: 40}
    for response in responses:
        if response.status_code == 429:
            error = response.json()["error"]
            assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
            assert 1 <= int(response.headers["retry-after"]) <= 60
    assert fake_upstream.stats["hits"] == 60
    records = wait_for_records(key, 100)
    assert Counter(r.status for r in records) == {200: 60, 429: 40}


def test_a_daily_budget_is_never_overspent_by_50_concurrent_requests(
    gunicorn, make_key, models, redis_client
):
    """Each request reserves its prompt as counted (PROMPT tokens at $0.001) plus
    max_tokens=5 at $0.01: $0.058, and really costs PROMPT + 3 output tokens:
    $0.038. The reservation is never below the real cost (text prompt counted
    exactly, an output cap on every request), so the documented overshoot bound
    (README, "Worst-case overshoot") is zero: the recorded spend never passes
    the $1.00 limit, however many requests are in flight at once.

    Waves of 50 concurrent requests are sent until one admits nothing; every
    refusal must be justified (spend in the message plus one reservation above
    the limit) and say not to retry."""
    key, secret = make_key(daily_budget_usd=Decimal("1.00"))
    limit = 1_000_000
    refusals = []
    admitted_per_wave = []
    sent = 0
    for _ in range(8):
        responses = fire(
            gunicorn.url, secret, [chat("flat-slow", max_tokens=5)] * 50, concurrency=50
        )
        sent += len(responses)
        assert {r.status_code for r in responses} <= {200, 429}
        admitted_per_wave.append(sum(r.status_code == 200 for r in responses))
        refusals += [r for r in responses if r.status_code == 429]
        wait_for_records(key, sent)
        # Settled: the counter holds real costs again before the next wave.
        wait_for(lambda: spend_counter(redis_client, key, "d") == recorded_micros(key))
        if admitted_per_wave[-1] == 0:
            break

    records = records_of(key)
    spent = recorded_micros(key)
    assert spent <= limit
    assert sum(r.cost_usd for r in records) <= Decimal("1.00")
    # Nothing was refused while a reservation still fitted.
    assert admitted_per_wave[0] >= limit // FLAT_RESERVED
    assert spent > limit - FLAT_RESERVED
    assert {r.cost_usd for r in records if r.status == 200} == {Decimal(FLAT_COST) / 1_000_000}
    for response in refusals:
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
        assert response.headers["x-should-retry"] == "false"
        message = error["message"]
        assert "daily budget" in message
        assert "limit $1.00" in message
        # Refused only when spend plus one reservation passed the limit: spend
        # above $0.942, shown to the cent.
        shown = Decimal(re.search(r"spent \$(\d+\.\d\d)", message).group(1))
        assert shown >= Decimal("0.94")


def test_settlement_replaces_reservations_with_real_costs_both_ways(
    gunicorn, make_key, models, redis_client
):
    """One answer costs less than its reservation (3 of max_tokens=5 output
    tokens); the other more (the upstream counts 500 prompt tokens where
    PureBridge counted PROMPT). Prices with a fraction of a micro-dollar per
    token: each request's cost is rounded up on its own."""
    key, secret = make_key(daily_budget_usd=Decimal("10.00"))

    cheap, dear = fire(
        gunicorn.url,
        secret,
        [chat("odd", max_tokens=5), chat("odd-big-prompt", max_tokens=5)],
        concurrency=2,
    )

    assert (cheap.status_code, dear.status_code) == (200, 200)
    cheap_cost = micros(PROMPT, 3, input=ODD_INPUT)
    dear_cost = micros(500, 3, input=ODD_INPUT)
    reserved = micros(PROMPT, 5, input=ODD_INPUT)
    assert cheap_cost < reserved < dear_cost
    wait_for_records(key, 2)
    wait_for(lambda: spend_counter(redis_client, key, "d") == cheap_cost + dear_cost)
    assert spend_counter(redis_client, key, "d") == cheap_cost + dear_cost
    assert recorded_micros(key) == cheap_cost + dear_cost
