"""Faults one after another under steady traffic from warm keys: PostgreSQL
stopped and started, frozen and thawed; Redis hung (a port that accepts and
never answers) and back, killed and back.

Throughout: no 500 and no request past its deadline; a key without limits and
a key with an RPM limit are always served; a key with a budget is served or
told to retry (503) while Redis is away. Afterwards: every request answered
is recorded, once, and the budget counter holds what the records cost."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import httpx2
import orjson
import pytest

from tests.faults.support import (
    API_DEADLINE,
    Unanswering,
    gateway,
    health,
    recorded,
    seed,
)
from tests.helpers import USER_HI, wait_for


@pytest.fixture(scope="module")
def keys(postgres, own_redis, fake_upstream):
    made = seed(
        postgres,
        own_redis.url,
        fake_upstream.base_url,
        [{}, {"rpm_limit": 100_000}, {"daily_budget_usd": "1000"}],
    )
    return dict(zip(["plain", "rpm", "budget"], made, strict=True))


@pytest.fixture(scope="module")
def web(postgres, own_redis, keys, tmp_path_factory):
    with gateway(tmp_path_factory.mktemp("gw-traffic"), postgres, own_redis.url) as server:
        yield server


@dataclass
class Sent:
    key: str
    phase: str
    status: int
    seconds: float
    request_id: str
    code: str


class Traffic:
    """One client per key, each sending a request every 20 ms until stopped."""

    def __init__(self, url: str, keys: dict) -> None:
        self.url = url
        self.keys = keys
        self.phase = "warm-up"
        self.sent: list[Sent] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._send, args=(name,)) for name in keys]

    def _send(self, name: str) -> None:
        body = orjson.dumps({"model": "flat", "messages": USER_HI, "max_tokens": 5})
        headers = {
            "Authorization": f"Bearer {self.keys[name].secret}",
            "Content-Type": "application/json",
        }
        with httpx2.Client(base_url=self.url, timeout=15) as client:
            while not self.stopping.is_set():
                phase, started = self.phase, time.monotonic()
                try:
                    response = client.post("/v1/chat/completions", content=body, headers=headers)
                    code = response.json().get("error", {}).get("code") or ""
                    sent = Sent(
                        name,
                        phase,
                        response.status_code,
                        time.monotonic() - started,
                        response.headers.get("x-purebridge-request-id", ""),
                        code,
                    )
                except httpx2.HTTPError as error:
                    sent = Sent(name, phase, 0, time.monotonic() - started, "", repr(error))
                self.sent.append(sent)
                time.sleep(0.02)

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)


def test_faults_one_after_another_under_traffic(web, keys, postgres, own_redis):
    def back_in_service() -> None:
        assert wait_for(lambda: health(web.url)[2].get("status") == "ok", timeout=20)
        time.sleep(1)

    with Traffic(web.url, keys) as traffic:
        time.sleep(1)
        traffic.phase = "postgres stopped"
        postgres.stop()
        time.sleep(2.5)
        postgres.start()
        traffic.phase = "postgres back"
        back_in_service()

        traffic.phase = "postgres frozen"
        postgres.freeze()
        time.sleep(2.5)
        postgres.thaw()
        traffic.phase = "postgres thawed"
        back_in_service()

        traffic.phase = "redis hung"
        own_redis.kill()
        hole = Unanswering(own_redis.port)
        time.sleep(2.5)
        hole.close()
        own_redis.start()
        traffic.phase = "redis back"
        back_in_service()

        traffic.phase = "redis killed"
        own_redis.kill()
        time.sleep(2)
        own_redis.start()
        traffic.phase = "redis back again"
        back_in_service()

    sent = traffic.sent
    by_phase = Counter((s.phase, s.key, s.status) for s in sent)
    assert all(s.status in (200, 503) for s in sent), by_phase
    assert max(s.seconds for s in sent) < API_DEADLINE, max(sent, key=lambda s: s.seconds)
    for name in ("plain", "rpm"):
        assert {s.status for s in sent if s.key == name} == {200}, by_phase
    refused = [s for s in sent if s.status == 503]
    assert {s.code for s in refused} <= {"service_unavailable"}
    # Only while Redis is away, or within the second a worker waits to ask it again.
    assert all(s.phase.startswith("redis") for s in refused), by_phase
    for phase in ("postgres stopped", "postgres frozen", "redis hung", "redis killed"):
        assert by_phase[(phase, "plain", 200)] > 0, by_phase

    for name, key in keys.items():
        answered = sorted(s.request_id for s in sent if s.key == name)
        assert sorted(recorded(postgres, key, len(answered))) == answered, name
    budget = keys["budget"]
    spent = postgres.query(
        "SELECT coalesce(sum(ceil(cost_usd * 1000000)), 0) FROM usage_usagerecord "
        "WHERE api_key_id = %s",
        budget.id,
    )[0][0]
    counter = (
        f"pb:{{a{budget.account_id}}}:spend:{budget.id}:d:{time.strftime('%Y%m%d', time.gmtime())}"
    )
    assert wait_for(lambda: int(own_redis.client().hget(counter, "spent") or -1) == spent, 10)
