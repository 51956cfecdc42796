"""PostgreSQL stopped under a running gateway, and started again.

Warm keys are served and metered through the outage (their records wait in
the usage writer and are written once the database is back); anything that
needs the database gets 503 with Retry-After at once, never a 500; /health
and the console say the database is down."""

from __future__ import annotations

import time

import pytest

from tests.faults.support import (
    API_DEADLINE,
    HEALTH_DEADLINE,
    ask,
    gateway,
    get,
    health,
    recorded,
    seed,
)
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def keys(postgres, own_redis, fake_upstream):
    made = seed(
        postgres,
        own_redis.url,
        fake_upstream.base_url,
        [{}, {}, {"daily_budget_usd": "10"}, {}],
    )
    return dict(zip(["warm", "cold", "budget", "console"], made, strict=True))


@pytest.fixture(scope="module")
def web(postgres, own_redis, keys, tmp_path_factory):
    with gateway(tmp_path_factory.mktemp("gw-stopped"), postgres, own_redis.url) as server:
        yield server


@pytest.fixture
def outage(postgres, web):
    """Stop the database for the test; start it again afterwards."""
    yield postgres.stop
    if not (postgres.data / "postmaster.pid").exists():
        postgres.start()
    # Back in service before the next test: its first request may need it.
    assert wait_for(lambda: health(web.url)[0] == 200, timeout=15)


def test_a_key_not_cached_yet_gets_503_with_retry_after_at_once(web, keys, outage):
    outage()

    answers = [ask(web.url, keys["cold"]) for _ in range(3)]

    for answer in answers:
        assert answer.status == 503, answer
        assert answer.body["error"]["type"] == "service_unavailable"
        assert answer.body["error"]["code"] == "service_unavailable"
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.seconds < API_DEADLINE


def test_warm_keys_are_served_through_the_outage_and_each_request_recorded_once_after(
    web, keys, outage, postgres, own_redis
):
    warm, budget = keys["warm"], keys["budget"]
    served = {warm.id: [], budget.id: []}
    for key in (warm, budget):
        first = ask(web.url, key)
        assert first.status == 200, first
        served[key.id].append(first.headers["x-purebridge-request-id"])
    outage()

    # Longer than the key cache's TTL (1 s): the keys are read again meanwhile.
    answers = []
    until = time.monotonic() + 3
    while time.monotonic() < until:
        for key in (warm, budget):
            answer = ask(web.url, key)
            answers.append(answer)
            if answer.status == 200:
                served[key.id].append(answer.headers["x-purebridge-request-id"])
        time.sleep(0.1)
    postgres.start()

    assert [a.status for a in answers] == [200] * len(answers), [a.body for a in answers]
    assert max(a.seconds for a in answers) < API_DEADLINE
    for key in (warm, budget):
        ids = recorded(postgres, key, len(served[key.id]))
        assert sorted(ids) == sorted(served[key.id])
    spent = postgres.query(
        "SELECT coalesce(sum(ceil(cost_usd * 1000000)), 0) FROM usage_usagerecord "
        "WHERE api_key_id = %s",
        budget.id,
    )[0][0]
    counter = (
        f"pb:{{a{budget.account_id}}}:spend:{budget.id}:d:{time.strftime('%Y%m%d', time.gmtime())}"
    )
    assert wait_for(lambda: int(own_redis.client().hget(counter, "spent") or -1) == spent, 10)


def test_health_says_the_database_is_unreachable_within_a_second(web, outage):
    outage()

    answers = [health(web.url) for _ in range(5)]
    assert wait_for(lambda: health(web.url)[2].get("database") == "unreachable", timeout=5)
    status, seconds, body = health(web.url)

    assert max(seconds for _, seconds, _ in answers) < HEALTH_DEADLINE
    assert status == 503
    assert body["database"] == "unreachable"
    assert body["redis"] == "ok"


def test_the_console_shows_a_503_page_while_the_database_is_down(web, outage):
    outage()

    for _ in range(2):
        status, seconds, response = get(web.url, "/docs/")
        assert status == 503
        assert seconds < API_DEADLINE
        assert response is not None
        assert response.headers["content-type"].startswith("text/html")
        assert int(response.headers["retry-after"]) >= 1
        assert "PureBridge" in response.text
        assert "database" in response.text.lower()
