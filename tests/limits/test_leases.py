"""Leases: a worker reserves many requests of a busy key at once and admits
them without asking Redis, and the limits still hold exactly. Against real
Redis: the limiter itself (two instances are two workers), then gunicorn."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.conf import settings

from tests.helpers import wait_for
from tests.limits.support import (
    FLAT_COST,
    PROMPT,
    Gunicorn,
    chat,
    fire,
    recorded_micros,
    records_of,
    spend_counter,
)


@dataclass
class Entry:
    """What the usage writer settles: a finished request."""

    reservation: object
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal


def key_info(make_key, redis_client, **limits):
    """A key as the gateway loads it, its budget windows (counters built
    already, as after a first request), and a reservation maker."""
    from gateway.auth import _load
    from gateway.limits import Reservation, key_windows, now

    key, _ = make_key(**limits)
    info = _load(key.lookup)
    windows = key_windows(info, now())
    for window in windows:
        redis_client.hset(window.key, mapping={"spent": 0, "rebuilt": 0})

    def reservation(n: int, tokens: int = 100, cost: int = 1_000) -> Reservation:
        return Reservation(
            info.id,
            f"pb-lease-{key.id}-{n}",
            "redis",
            0,
            tokens,
            cost,
            tuple(w.key for w in windows),
        )

    return key, info, windows, reservation


def admit_all(limiters, info, windows, reservations, concurrency: int):
    """Admit every reservation, `concurrency` at a time, taking the limiters in
    turn (each is a worker); the verdicts in order. Leases end afterwards."""

    async def run():
        gate = asyncio.Semaphore(concurrency)

        async def one(i, reservation):
            async with gate:
                verdict = await limiters[i % len(limiters)].admit(info, reservation, windows)
                reservation.admitted_ms = verdict.admitted_ms
                return verdict

        verdicts = await asyncio.gather(*(one(i, r) for i, r in enumerate(reservations)))
        for limiter in limiters:
            await limiter.release_all()
        return verdicts

    return asyncio.run(run())


def evalsha_calls(redis_client) -> int:
    return redis_client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)


def window_sums(redis_client, key) -> tuple[int, int]:
    sums = redis_client.hgetall(f"pb:rl:{key.id}:sums")
    return int(sums.get(b"r", 0)), int(sums.get(b"t", 0))


@pytest.mark.parametrize("concurrency", [1, 50])
def test_a_busy_key_is_admitted_from_leases_and_counted_exactly(
    make_key, redis_client, concurrency
):
    """300 requests, one at a time or 50 at once: a few Redis calls, and once
    the leases end the window and the budget hold exactly what the requests
    reserved; settled, what they cost. One at a time, the headers count
    every request."""
    from gateway.limiter_redis import RedisLimiter

    key, info, windows, reservation = key_info(
        make_key,
        redis_client,
        rpm_limit=1_000_000,
        tpm_limit=100_000_000,
        daily_budget_usd=Decimal("1000"),
    )
    reservations = [reservation(n) for n in range(300)]
    before = evalsha_calls(redis_client)
    limiter = RedisLimiter()

    verdicts = admit_all([limiter], info, windows, reservations, concurrency)

    calls = evalsha_calls(redis_client) - before
    assert [v.status for v in verdicts] == ["ok"] * 300
    # Asks and returns: leases of 8, 16, 32, ... requests, not one call each.
    assert calls <= 20, calls
    if concurrency == 1:
        assert [v.requests for v in verdicts] == list(range(1, 301))
        assert [v.tokens for v in verdicts] == [100 * n for n in range(1, 301)]
    assert window_sums(redis_client, key) == (300, 300 * 100)
    assert spend_counter(redis_client, key, "d") == 300 * 1_000
    members = redis_client.zrange(f"pb:rl:{key.id}:win", 0, -1)
    assert not [m for m in members if m.startswith(b"L") and b":used" not in m]  # all returned

    limiter.settle([Entry(r, 60, 10, Decimal("0.000700")) for r in reservations])

    assert window_sums(redis_client, key) == (300, 300 * 70)
    assert spend_counter(redis_client, key, "d") == 300 * 700


@pytest.mark.parametrize("concurrency", [1, 50])
def test_two_workers_leasing_admit_exactly_the_rpm(make_key, redis_client, concurrency):
    """RPM 1,000: leases while the key is far from it, one by one near it, and
    exactly 1,000 of 1,500 requests admitted, whatever the concurrency."""
    from gateway.limiter_redis import RedisLimiter

    key, info, windows, reservation = key_info(make_key, redis_client, rpm_limit=1000)
    before = evalsha_calls(redis_client)

    verdicts = admit_all(
        [RedisLimiter(), RedisLimiter()],
        info,
        windows,
        [reservation(n, tokens=0, cost=0) for n in range(1500)],
        concurrency,
    )

    assert Counter(v.status for v in verdicts) == {"ok": 1000, "rpm": 500}
    assert evalsha_calls(redis_client) - before < 1500  # some from leases
    assert window_sums(redis_client, key)[0] == 1000
    assert max(v.requests for v in verdicts if v.status == "ok") <= 1000


def test_two_workers_leasing_never_pass_a_daily_budget(make_key, redis_client):
    """$1.00 a day at $0.001 a request (reserved = real): exactly 1,000 of 1,500
    concurrent requests are admitted, and the counter holds exactly $1.00 once
    the leases return what they did not use."""
    from gateway.limiter_redis import RedisLimiter

    key, info, windows, reservation = key_info(make_key, redis_client, daily_budget_usd=Decimal(1))

    verdicts = admit_all(
        [RedisLimiter(), RedisLimiter()],
        info,
        windows,
        [reservation(n, tokens=0, cost=1_000) for n in range(1500)],
        concurrency=50,
    )

    assert Counter(v.status for v in verdicts) == {"ok": 1000, "budget": 500}
    assert spend_counter(redis_client, key, "d") == 1_000_000


def test_an_admission_asked_again_finds_its_lease(make_key, redis_client):
    """The reply granting a lease was lost: asked again, Redis answers with the
    same lease (not a second one), and the worker admits from it."""
    from gateway.limiter_redis import ADMIT_SCRIPT, RedisLimiter, _keys
    from purebridge.redis import pipe

    key, info, windows, reservation = key_info(
        make_key, redis_client, rpm_limit=100_000, daily_budget_usd=Decimal("100")
    )
    first = reservation(0)
    first.lease_asked = 8
    limiter = RedisLimiter()

    async def lost_then_asked_again():
        argv = [info.rpm_limit, 0, 100, first.request_id, 1_000, 1, 0, 8, windows[0].limit_micros]
        keys = [*_keys(info.id), windows[0].key, f"pb:adm:{first.request_id}"]
        lost = await pipe().evalsha(ADMIT_SCRIPT, keys, argv)  # the reply never arrives
        again = await limiter.admit(info, first, windows, retry=True)
        drawn = [await limiter.admit(info, reservation(n), windows) for n in range(1, 9)]
        return lost, again, drawn

    lost, again, drawn = asyncio.run(lost_then_asked_again())

    assert int(lost[7]) == 8
    assert again.status == "ok" and again.admitted_ms == int(lost[6])
    assert [v.status for v in drawn] == ["ok"] * 8
    # One request and one lease of 8 reserved, once.
    assert window_sums(redis_client, key)[0] == 9
    assert spend_counter(redis_client, key, "d") == 9 * 1_000


def test_a_key_near_its_limit_is_not_leased(make_key, redis_client):
    """RPM 100: a lease of 8 would be more than 1/64 of what is left, so every
    request asks Redis."""
    from gateway.limiter_redis import RedisLimiter

    key, info, windows, reservation = key_info(make_key, redis_client, rpm_limit=100)
    before = evalsha_calls(redis_client)

    verdicts = admit_all(
        [RedisLimiter()], info, windows, [reservation(n, 0, 0) for n in range(20)], 1
    )

    assert [v.requests for v in verdicts] == list(range(1, 21))
    assert evalsha_calls(redis_client) - before == 20
    assert not [m for m in redis_client.zrange(f"pb:rl:{key.id}:win", 0, -1) if m.startswith(b"L")]


@pytest.fixture
def gunicorn(django_db_setup, tmp_path_factory):
    server = Gunicorn(
        tmp_path_factory.mktemp("leases") / "gunicorn.log", redis_url=settings.REDIS_URL
    )
    server.start()
    yield server
    server.stop()


def test_two_gunicorn_workers_lease_and_return_everything_on_stopping(
    gunicorn, make_key, models, redis_client
):
    """400 requests from 20 clients over two workers, and the server stopped
    at once: the leases the workers held go back as they stop, so the window
    counts the 400 requests and the tokens they used, and the budget counter
    what they cost, to the micro-dollar."""
    key, secret = make_key(
        rpm_limit=100_000, tpm_limit=100_000_000, daily_budget_usd=Decimal("100")
    )

    responses = fire(gunicorn.url, secret, [chat("flat", max_tokens=5)] * 400, concurrency=20)
    gunicorn.stop()

    assert Counter(r.status_code for r in responses) == {200: 400}
    # Each worker's view: its own requests exact, the other's leases whole.
    assert {r.headers["x-ratelimit-limit-requests"] for r in responses} == {"100000"}
    assert max(int(r.headers["x-ratelimit-remaining-requests"]) for r in responses) < 100_000
    assert len(records_of(key)) == 400
    assert recorded_micros(key) == 400 * FLAT_COST
    assert spend_counter(redis_client, key, "d") == 400 * FLAT_COST
    assert window_sums(redis_client, key) == (400, 400 * (PROMPT + 3))
    members = redis_client.zrange(f"pb:rl:{key.id}:win", 0, -1)
    assert any(m.startswith(b"L") for m in members)  # the workers did lease
    assert not [m for m in members if m.startswith(b"L") and b":used" not in m]


def test_leases_end_after_a_second_and_return_what_they_did_not_use(
    gunicorn, make_key, models, redis_client
):
    key, secret = make_key(rpm_limit=100_000, daily_budget_usd=Decimal("100"))

    fire(gunicorn.url, secret, [chat("flat", max_tokens=5)] * 100, concurrency=4)
    time.sleep(1.2)

    assert wait_for(lambda: len(records_of(key)) == 100, timeout=10)
    assert wait_for(lambda: window_sums(redis_client, key)[0] == 100, timeout=5)
    assert wait_for(lambda: spend_counter(redis_client, key, "d") == 100 * FLAT_COST, timeout=5)
