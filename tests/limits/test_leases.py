"""Leases: a worker reserves many requests of a busy key at once and admits
them without asking Redis, and the limits still hold exactly. Against real
Redis: the limiter itself (two instances are two workers), then gunicorn."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import Decimal

import pytest

from gateway.leases import leases_key
from gateway.lua import redis_now_ms, window_key
from tests.helpers import wait_for
from tests.limits.support import (
    FLAT_COST,
    PROMPT,
    admit_all,
    chat,
    fire,
    gunicorn_in,
    key_info,
    recorded_micros,
    records_of,
    settled,
    spend_counter,
    window_sums,
)


def evalsha_calls(redis_client) -> int:
    return redis_client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)


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
    members = redis_client.zrange(window_key(key.account_id, key.id), 0, -1)
    assert not [m for m in members if m.startswith(b"L") and b":used" not in m]  # all returned

    limiter.settle([settled(key, r, 60, 10, "0.000700") for r in reservations])

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

    reservations = [reservation(n, tokens=0, cost=1_000) for n in range(1500)]

    verdicts = admit_all([RedisLimiter(), RedisLimiter()], info, windows, reservations, 50)

    assert Counter(v.status for v in verdicts) == {"ok": 1000, "budget": 500}
    assert any(r.lease for r in reservations)  # while far from the limit
    assert spend_counter(redis_client, key, "d") == 1_000_000


def test_a_lease_found_again_after_a_lost_reply_is_returned_whole(
    make_key, redis_client, monkeypatch
):
    """The reply granting a lease was lost: the request asks again and Redis
    answers with its first admission and the same lease (reserved once), which
    the worker returns at once: when the lost reply was sent is not its to
    know, so neither is how long the lease has left."""
    import purebridge.redis
    from gateway.leases import lease_record
    from gateway.limiter_redis import ADMIT_SCRIPT, limiter
    from gateway.limits import _decide

    key, info, windows, reservation = key_info(
        make_key, redis_client, rpm_limit=100_000, daily_budget_usd=Decimal("100")
    )
    real_pipe = purebridge.redis.pipe
    lost = []

    class LosesTheLeaseReply:
        async def evalsha(self, script, keys, argv):
            reply = await real_pipe().evalsha(script, keys, argv)
            if script is ADMIT_SCRIPT and int(argv[7]) and not lost:
                lost.append(reply)
                raise ConnectionError("the connection broke before the reply")
            return reply

    monkeypatch.setattr(purebridge.redis, "pipe", LosesTheLeaseReply)
    second = reservation(1)

    async def run():
        first = await _decide(info, reservation(0), windows)  # a key not seen yet: no lease
        again = await _decide(info, second, windows)  # asks for one: its reply is lost
        await asyncio.sleep(0.1)
        returned = not redis_client.exists(lease_record(key.account_id, second.request_id))
        await limiter.leases.release_all()
        return first, again, returned

    first, again, returned = asyncio.run(run())

    [reply] = lost
    assert int(reply[7]) == 8
    assert (first.status, again.status) == ("ok", "ok")
    assert again.admitted_ms == int(reply[6])
    assert returned  # at once, not held until the worker's end
    # Two requests, and the lease reserved once and returned whole.
    assert window_sums(redis_client, key) == (2, 200)
    assert spend_counter(redis_client, key, "d") == 2 * 1_000
    assert not redis_client.exists(lease_record(key.account_id, second.request_id))
    assert redis_client.zscore(leases_key(key.account_id), second.request_id) is None


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
    assert not [
        m
        for m in redis_client.zrange(window_key(key.account_id, key.id), 0, -1)
        if m.startswith(b"L")
    ]


@pytest.fixture
def gunicorn(django_db_setup, tmp_path_factory):
    with gunicorn_in(tmp_path_factory, "leases") as server:
        yield server


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
    members = redis_client.zrange(window_key(key.account_id, key.id), 0, -1)
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
    members = redis_client.zrange(window_key(key.account_id, key.id), 0, -1)
    assert any(m.startswith(b"L") for m in members)  # the workers did lease
    assert (
        redis_client.zcard(leases_key(key.account_id)) == 0
    )  # and returned every lease, the server still up


def test_a_killed_workers_lease_is_reclaimed_to_the_micro_dollar(make_key, redis_client):
    """A worker admits 40 requests, most from leases, and is killed before it
    returns them; the usage records of half of them are settled before the
    reclaim, half after (as a long request's would be). The reclaim leaves
    alone leases that ended less than RECLAIM_AFTER_MS ago (their worker may
    still return them), then returns what the dead worker's requests did not
    settle: at the end the counter holds what they cost, exactly, and a second
    reclaim, or the worker's own return come late (it was only cut off from
    Redis), changes nothing."""
    from gateway.leases import LEASE_MS, reclaim_leases
    from gateway.limiter_redis import RedisLimiter

    key, info, windows, reservation = key_info(
        make_key, redis_client, daily_budget_usd=Decimal(100)
    )
    reservations = [reservation(n, tokens=0, cost=1_000) for n in range(40)]
    worker = RedisLimiter()

    async def run():
        for r in reservations:
            verdict = await worker.admit(info, r, windows)
            r.admitted_ms = verdict.admitted_ms
        # Its event loop stops here, and with it the lease's timers: nothing returned.

    asyncio.run(run())
    assert sum(1 for r in reservations if r.lease) >= 30
    assert redis_client.zcard(leases_key(key.account_id)) >= 1
    entries = [settled(key, r, 60, 10, "0.000700") for r in reservations]
    worker.settle(entries[::2])
    assert spend_counter(redis_client, key, "d") > 40 * 700  # the leases' unused part

    assert reclaim_leases() == 0  # not ended, or too recently
    time.sleep(LEASE_MS / 1000)  # ended now
    assert reclaim_leases(older_than_ms=0) >= 1
    worker.settle(entries[1::2])

    assert spend_counter(redis_client, key, "d") == 40 * 700
    assert redis_client.zcard(leases_key(key.account_id)) == 0
    assert reclaim_leases(older_than_ms=0) == 0
    # It was only cut off from Redis: its return comes late.
    asyncio.run(worker.leases.release_all())
    assert spend_counter(redis_client, key, "d") == 40 * 700


def test_a_counter_rebuilt_after_a_lease_was_granted_gets_nothing_back(make_key, redis_client):
    """A counter rebuilt from the usage records while a lease was out never
    held the lease: neither its return nor its reclaim takes anything from it."""
    from gateway.leases import LEASE_MS, reclaim_leases
    from gateway.limiter_redis import RedisLimiter

    key, info, windows, reservation = key_info(
        make_key, redis_client, daily_budget_usd=Decimal(100)
    )
    (daily,) = windows
    returned, reclaimed = RedisLimiter(), RedisLimiter()

    async def admit(worker, first):
        for n in range(first, first + 3):  # the second asks for a lease
            await worker.admit(info, reservation(n, tokens=0, cost=1_000), windows)

    asyncio.run(admit(returned, 0))
    asyncio.run(admit(reclaimed, 10))
    assert redis_client.zcard(leases_key(key.account_id)) == 2
    # Rebuilt (Redis lost it): the records say $0.005 so far.
    rebuilt_at = redis_now_ms(redis_client) + 1
    redis_client.hset(daily.key, mapping={"spent": 5_000, "rebuilt": rebuilt_at})

    asyncio.run(returned.leases.release_all())
    time.sleep(LEASE_MS / 1000)
    assert reclaim_leases(older_than_ms=0) == 1

    assert spend_counter(redis_client, key, "d") == 5_000
