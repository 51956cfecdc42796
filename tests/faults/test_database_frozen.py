"""PostgreSQL frozen (every process SIGSTOPped, connections open): nothing
refuses, nothing answers. Every wait on it is cut at its deadline: requests
that need it get 503 in time, warm keys are served, /health answers within a
second, and the usage records written once it thaws."""

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
    made = seed(postgres, own_redis.url, fake_upstream.base_url, [{}, {}, {}])
    return dict(zip(["warm", "cold", "other"], made, strict=True))


@pytest.fixture(scope="module")
def web(postgres, own_redis, keys, tmp_path_factory):
    with gateway(tmp_path_factory.mktemp("gw-frozen"), postgres, own_redis.url) as server:
        yield server


@pytest.fixture
def frozen(postgres, web):
    """Freeze the database for the test (after its warm-up); thaw it afterwards."""
    yield postgres.freeze
    postgres.thaw()
    # Back in service before the next test: its first request may need it.
    assert wait_for(lambda: health(web.url)[0] == 200, timeout=15)


def test_a_request_that_needs_the_database_gets_503_by_its_deadline(web, keys, frozen):
    frozen()

    answers = [ask(web.url, keys["cold"], timeout=10) for _ in range(3)]

    for answer in answers:
        assert answer.status == 503, answer
        assert answer.body["error"]["code"] == "service_unavailable"
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.seconds < API_DEADLINE


def test_warm_keys_are_served_while_frozen_and_recorded_once_it_thaws(web, keys, frozen, postgres):
    key = keys["warm"]
    served = [ask(web.url, key).headers["x-purebridge-request-id"]]
    frozen()

    answers = []
    until = time.monotonic() + 3  # past the key cache's TTL
    while time.monotonic() < until:
        answers.append(ask(web.url, key, timeout=10))
        time.sleep(0.1)
    postgres.thaw()

    assert [a.status for a in answers] == [200] * len(answers), [a.body for a in answers]
    assert max(a.seconds for a in answers) < API_DEADLINE
    served += [a.headers["x-purebridge-request-id"] for a in answers]
    assert sorted(recorded(postgres, key, len(served))) == sorted(served)


def test_health_answers_within_a_second_and_says_the_database_is_unreachable(web, frozen):
    frozen()

    answers = [health(web.url) for _ in range(4)]
    assert wait_for(lambda: health(web.url)[2].get("database") == "unreachable", timeout=5)

    assert max(seconds for _, seconds, _ in answers) < HEALTH_DEADLINE
    status, seconds, body = health(web.url)
    assert (status, body["database"], body["redis"]) == (503, "unreachable", "ok")


def test_the_console_shows_a_503_page_by_its_deadline(web, frozen):
    frozen()

    for _ in range(2):
        status, seconds, response = get(web.url, "/docs/", timeout=10)
        assert status == 503
        assert seconds < API_DEADLINE + 1  # the statement timeout's deadline (2 s + 1)
        assert response is not None
        assert "database" in response.text.lower()
