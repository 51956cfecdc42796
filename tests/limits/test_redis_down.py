"""Redis lost and back: rate limits fail open per process, budgets fail closed,
and the counters are rebuilt from the usage records.

These tests kill a Redis of their own (the rest of the suite keeps the shared
one) under a gunicorn of their own with two workers."""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal

import httpx2
import pytest

from tests.helpers import post_chat, wait_for
from tests.limits.support import (
    FLAT_COST,
    RedisServer,
    chat,
    fire,
    gunicorn_in,
    recorded_micros,
    records_of,
    spend_counter,
)


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def web(django_db_setup, own_redis, tmp_path_factory):
    with gunicorn_in(tmp_path_factory, "gunicorn-own-redis", own_redis.url) as server:
        yield server


@pytest.fixture
def make_key(make_key, own_redis):
    """Keys announced on the module's Redis too, as a console sharing the
    workers' Redis announces them: this process announces its keys on the
    suite's Redis, which these workers never hear (gateway/lookups.py)."""
    from gateway.invalidation import CHANNEL
    from gateway.lookups import announced_key, announced_seconds

    def make(**fields):
        key, secret = make_key(**fields)
        client = own_redis.client()
        client.set(announced_key(key.lookup), 1, ex=announced_seconds())
        client.publish(CHANNEL, f"key:{key.lookup}")
        return key, secret

    return make


@pytest.fixture
def redis(own_redis, web, models):
    """The module's Redis, running and empty at the start of each test."""
    if not own_redis.ping():
        # Started again only once any /health probe begun while it was down has
        # given up (1 s): one still retrying when Redis returns can leave a
        # broken connection behind (test_budgets_are_admitted_at_once_after_...).
        time.sleep(max(0.0, own_redis.killed_at + 1.2 - time.monotonic()))
        own_redis.start()
    # A worker that saw Redis fail asks it again a second later
    # (gateway/limiter_redis.py `usable`).
    time.sleep(max(0.0, own_redis.started_at + 1.1 - time.monotonic()))
    own_redis.client().flushall()
    return own_redis


def health(web) -> tuple[int, dict]:
    response = httpx2.get(f"{web.url}/health", timeout=10)
    return response.status_code, response.json()


def send(web, secret: str, model: str = "flat", **fields) -> httpx2.Response:
    with httpx2.Client(base_url=web.url, timeout=30) as http:
        return post_chat(http, secret, chat(model, max_tokens=5, **fields))


def recorded(key, count: int) -> bool:
    """Wait until the workers have written the key's `count` usage records (none
    may land in the next test's tables)."""
    return bool(wait_for(lambda: len(records_of(key)) == count, timeout=20))


def until_admitted(web, secret: str) -> int:
    """Send until a request is admitted; how many were sent."""
    sent = 0

    def admitted() -> bool:
        nonlocal sent
        sent += 1
        return send(web, secret).status_code == 200

    assert wait_for(admitted, timeout=15)
    return sent


def settled(key, redis) -> bool:
    """Every request of the key recorded, and its daily counter settled."""
    return spend_counter(redis.client(), key, "d") == recorded_micros(key)


def test_with_redis_down_rate_limits_fail_open_per_process(web, redis, make_key):
    """RPM 60 on two workers: each enforces 30 on its own."""
    key, secret = make_key(rpm_limit=60)
    assert send(web, secret).status_code == 200

    redis.kill()
    responses = fire(web.url, secret, [chat("flat")] * 100, concurrency=10)

    assert recorded(key, 101)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 429}, statuses
    assert 30 <= statuses[200] <= 60
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "rate_limit_exceeded"
            assert 1 <= int(response.headers["retry-after"]) <= 60


def test_with_redis_down_a_rate_limited_answer_says_no_requests_remain(web, redis, make_key):
    """RPM 4 on two workers: one worker (one kept-alive connection) admits 2."""
    key, secret = make_key(rpm_limit=4)
    redis.kill()

    with httpx2.Client(base_url=web.url, timeout=30) as http:
        responses = [post_chat(http, secret, chat("flat")) for _ in range(3)]
    assert recorded(key, 3)

    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2].headers["x-ratelimit-remaining-requests"] == "0"


def test_with_redis_down_budgets_fail_closed(web, redis, make_key, fake_upstream):
    key, secret = make_key(daily_budget_usd=Decimal("10"))
    redis.kill()

    responses = fire(web.url, secret, [chat("flat", max_tokens=5)] * 10, concurrency=5)

    assert recorded(key, 10)
    for response in responses:
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.json()["error"]["type"] == "service_unavailable"
        assert int(response.headers["retry-after"]) > 0
    assert fake_upstream.stats["hits"] == 0


def test_with_redis_down_health_says_redis_unreachable_and_limits_degraded(web, redis):
    redis.kill()

    assert wait_for(lambda: health(web)[1]["redis"] == "unreachable", timeout=10)
    status, body = health(web)
    assert status == 200  # still serving: only a lost database takes a worker out
    assert body["limits"] == "degraded"
    assert body["status"] == "degraded"
    assert body["database"] == "ok"


def test_when_redis_is_back_budgets_work_on_counters_rebuilt_from_usage(web, redis, make_key):
    key, secret = make_key(daily_budget_usd=Decimal("10"))
    before = [send(web, secret) for _ in range(3)]
    assert [r.status_code for r in before] == [200] * 3, [r.text for r in before]
    assert wait_for(lambda: settled(key, redis))
    redis.kill()
    assert send(web, secret).status_code == 503

    redis.start()  # on the same port, empty

    attempts = until_admitted(web, secret)

    assert recorded(key, 3 + 1 + attempts)
    assert wait_for(lambda: settled(key, redis))
    assert spend_counter(redis.client(), key, "d") == recorded_micros(key) == 4 * FLAT_COST


def test_a_request_in_flight_while_redis_restarts_is_counted_once(
    web, redis, make_key, fake_upstream
):
    """A slow request is admitted (and reserved) on the old Redis; Redis
    restarts empty; a new request rebuilds the counter from the usage records
    before the slow one has been recorded. When the slow one settles, the
    counter must end up holding both real costs."""
    key, secret = make_key(daily_budget_usd=Decimal("10"))
    slow: list[httpx2.Response] = []
    thread = threading.Thread(target=lambda: slow.append(send(web, secret, "flat-slower")))
    thread.start()
    assert wait_for(lambda: fake_upstream.stats["hits"] == 1)

    redis.kill()
    redis.start()
    attempts = until_admitted(web, secret)
    thread.join(30)

    assert [r.status_code for r in slow] == [200]
    assert recorded(key, 1 + attempts)
    wait_for(lambda: settled(key, redis))
    assert spend_counter(redis.client(), key, "d") == recorded_micros(key) == 2 * FLAT_COST


def test_budgets_are_admitted_at_once_after_a_restart_under_health_probes(web, redis, make_key):
    """Load balancers probe /health all the time. Redis dies, a probe is still
    retrying its ping when Redis comes back, and a second later (when the
    workers ask Redis again) a budget request must be admitted, not refused
    with 503 as if Redis were still down. The broken connection does not come
    every time (about one restart in six here): ten restarts make it likely."""
    key, secret = make_key(daily_budget_usd=Decimal("10"))
    statuses = []
    for _ in range(10):
        redis.kill()
        assert wait_for(lambda: health(web)[1]["redis"] == "unreachable", timeout=10)
        redis.start()
        time.sleep(1.1)
        statuses += [send(web, secret).status_code for _ in range(3)]

    assert recorded(key, len(statuses))
    assert statuses == [200] * len(statuses)
