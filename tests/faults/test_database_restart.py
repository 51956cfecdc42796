"""PostgreSQL restarted: every connection the pool holds is broken (the server
ended it, AdminShutdown), which the pool does not know until it is used. A
request that meets one is retried once on a fresh connection."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faults.support import API_DEADLINE, ask, gateway, recorded, seed


@pytest.fixture(scope="module")
def keys(postgres, own_redis, fake_upstream):
    return seed(postgres, own_redis.url, fake_upstream.base_url, [{}] * 48)


@pytest.fixture(scope="module")
def web(postgres, own_redis, keys, tmp_path_factory):
    with gateway(tmp_path_factory.mktemp("gw-restart"), postgres, own_redis.url) as server:
        yield server


def all_at_once(url: str, keys) -> list:
    with ThreadPoolExecutor(len(keys)) as pool:
        return list(pool.map(lambda key: ask(url, key, timeout=10), keys))


def test_requests_that_need_the_database_succeed_a_second_after_a_restart(web, keys, postgres):
    # Cold keys fill the pool with connections, then the server restarts.
    before = all_at_once(web.url, keys[:16])
    assert [a.status for a in before] == [200] * 16
    # Their records written: the usage writer, idle, does not find the broken
    # connections first.
    for key in keys[:16]:
        assert recorded(postgres, key, 1)
    postgres.restart()
    time.sleep(1)

    after = all_at_once(web.url, keys[16:32])

    assert [a.status for a in after] == [200] * 16, [a.body for a in after if a.status != 200]
    assert max(a.seconds for a in after) < API_DEADLINE
    for key, answer in zip(keys[16:32], after, strict=True):
        assert recorded(postgres, key, 1) == [answer.headers["x-purebridge-request-id"]]


def test_the_records_of_requests_served_across_a_restart_are_each_written_once(web, keys, postgres):
    key = keys[32]
    served = [ask(web.url, key).headers["x-purebridge-request-id"]]
    postgres.restart()
    for _ in range(10):
        answer = ask(web.url, key)
        assert answer.status == 200
        served.append(answer.headers["x-purebridge-request-id"])

    assert sorted(recorded(postgres, key, len(served))) == sorted(served)
