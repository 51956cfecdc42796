"""Redis replaced by a port that accepts connections and never answers (a hung
Redis, a proxy in front of a dead one): the Redis-down policy holds within
the Redis deadline, not after long timeouts. Budgets fail closed at once,
rate limits fall back to the per-process limiter, /health says so within a
second, and when Redis answers again the budgets are whole."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from tests.faults.support import HEALTH_DEADLINE, Unanswering, ask, gateway, health, recorded, seed
from tests.helpers import wait_for

# REDIS_TIMEOUT (0.5 s) and REDIS_CONNECT_TIMEOUT (0.5 s), with room for a busy machine.
REDIS_DEADLINE = 1.5


@pytest.fixture(scope="module")
def keys(postgres, own_redis, fake_upstream):
    made = seed(
        postgres,
        own_redis.url,
        fake_upstream.base_url,
        [{"daily_budget_usd": "10"}, {"rpm_limit": 600}, {"daily_budget_usd": "10"}],
    )
    return dict(zip(["budget", "rpm", "back"], made, strict=True))


@pytest.fixture(scope="module")
def web(postgres, own_redis, keys, tmp_path_factory):
    with gateway(tmp_path_factory.mktemp("gw-redis"), postgres, own_redis.url) as server:
        yield server


@pytest.fixture
def hung_redis(own_redis, web):
    """Replace Redis by a port that never answers for the test; a real Redis
    (empty) is back on the same port afterwards."""
    hole: list[Unanswering] = []

    def hang() -> None:
        own_redis.kill()
        hole.append(Unanswering(own_redis.port))

    def answer_again() -> None:
        hole.pop().close()
        own_redis.start()

    # A worker that saw Redis fail asks it again a second later.
    assert wait_for(lambda: health(web.url)[2].get("redis") == "ok", timeout=5)
    yield hang, answer_again
    if hole:
        answer_again()


def all_at_once(url: str, key, count: int) -> list:
    with ThreadPoolExecutor(5) as pool:
        return list(pool.map(lambda _: ask(url, key, timeout=30), range(count)))


def test_budgets_fail_closed_at_once(web, keys, hung_redis, fake_upstream, postgres):
    key = keys["budget"]
    assert ask(web.url, key).status == 200
    hang, _ = hung_redis
    hits = fake_upstream.stats["hits"]
    hang()

    answers = all_at_once(web.url, key, 10)

    for answer in answers:
        assert answer.status == 503, answer
        assert answer.body["error"]["code"] == "service_unavailable"
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.seconds < REDIS_DEADLINE
    assert fake_upstream.stats["hits"] == hits
    assert len(recorded(postgres, key, 11)) == 11


def test_rate_limits_fall_back_to_the_process_at_once(web, keys, hung_redis):
    hang, _ = hung_redis
    hang()

    answers = all_at_once(web.url, keys["rpm"], 10)

    assert Counter(a.status for a in answers) == {200: 10}
    assert max(a.seconds for a in answers) < REDIS_DEADLINE


def test_health_says_redis_is_unreachable_within_a_second(web, hung_redis):
    hang, _ = hung_redis
    hang()

    answers = [health(web.url) for _ in range(4)]
    assert wait_for(lambda: health(web.url)[2].get("redis") == "unreachable", timeout=5)

    assert max(seconds for _, seconds, _ in answers) < HEALTH_DEADLINE
    status, _, body = health(web.url)
    assert (status, body["database"], body["limits"]) == (200, "ok", "degraded")


def test_a_console_login_answers_by_the_deadline(web, hung_redis):
    """Failed logins are counted in Redis (Django's cache)."""
    hang, _ = hung_redis
    hang()

    started = time.monotonic()
    with httpx2.Client(base_url=web.url, timeout=30) as client:
        page = client.get("/login/")
        token = client.cookies["csrftoken"]
        response = client.post(
            "/login/",
            data={
                "username": "faults@example.com",
                "password": "wrong",
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": f"{web.url}/login/"},
        )

    assert page.status_code == 200
    assert response.status_code in (200, 503)
    assert time.monotonic() - started < REDIS_DEADLINE * 2


def test_when_redis_answers_again_budgets_are_admitted_and_whole(
    web, keys, hung_redis, postgres, own_redis
):
    key = keys["back"]
    answers = [ask(web.url, key)]
    hang, answer_again = hung_redis
    hang()
    answers += [ask(web.url, key) for _ in range(3)]
    answer_again()

    def admitted() -> bool:
        answers.append(ask(web.url, key))
        return answers[-1].status == 200

    assert wait_for(admitted, timeout=10)
    assert [a.status for a in answers[:4]] == [200, 503, 503, 503]
    served = sorted(a.headers["x-purebridge-request-id"] for a in answers)
    assert sorted(recorded(postgres, key, len(answers))) == served
    spent = postgres.query(
        "SELECT coalesce(sum(ceil(cost_usd * 1000000)), 0) FROM usage_usagerecord "
        "WHERE api_key_id = %s",
        key.id,
    )[0][0]
    assert spent > 0
    counter = f"pb:{{a{key.account_id}}}:spend:{key.id}:d:{time.strftime('%Y%m%d', time.gmtime())}"
    assert wait_for(lambda: int(own_redis.client().hget(counter, "spent") or -1) == spent, 10)
