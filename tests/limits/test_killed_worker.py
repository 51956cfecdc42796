"""A web worker killed mid-request (SIGKILL: the OOM killer, a deploy) leaves
every request it had sent upstream recorded once, and the key's counters
equal to its records (gateway/journal.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import Counter
from decimal import Decimal

import httpx2
import orjson
import pytest
from django.conf import settings

from gateway import journal
from tests.helpers import wait_for
from tests.limits.support import (
    Gunicorn,
    _connections,
    chat,
    recorded_micros,
    records_of,
    spend_counter,
)
from usage.models import UsageRecord

STREAMS = 50
TTL = 2


@pytest.fixture
def gunicorn(tmp_path_factory, models):
    server = Gunicorn(
        tmp_path_factory.mktemp("killed-worker") / "gunicorn.log", redis_url=settings.REDIS_URL
    )
    server.env["PUREBRIDGE_JOURNAL_TTL"] = str(TTL)
    server.start()
    yield server
    server.stop()


def _stream_all(url: str, secret: str, done: list) -> None:
    """STREAMS streamed chats at once, each with its own X-Client-Request-Id;
    each one's status, or the error that ended it (its worker was killed)."""

    async def run() -> None:
        async with httpx2.AsyncClient(base_url=url, timeout=30) as client:

            async def one(n: int) -> object:
                headers = {
                    "Authorization": f"Bearer {secret}",
                    "Content-Type": "application/json",
                    "X-Client-Request-Id": f"killed-{n}",
                }
                body = orjson.dumps(chat("flat-stream", stream=True, max_tokens=30))
                try:
                    async with client.stream(
                        "POST", "/v1/chat/completions", content=body, headers=headers
                    ) as response:
                        await response.aread()
                        return response.status_code
                except httpx2.HTTPError as exc:
                    return type(exc).__name__

            done.extend(await asyncio.gather(*(one(n) for n in range(STREAMS))))

    asyncio.run(run())


def test_a_killed_worker_leaves_every_request_it_sent_upstream_recorded_once(
    gunicorn, make_key, fake_upstream, redis_client
):
    key, secret = make_key(rpm_limit=100_000, daily_budget_usd=Decimal(100))
    outcomes: list = []
    clients = threading.Thread(target=_stream_all, args=(gunicorn.url, secret, outcomes))
    clients.start()
    assert wait_for(lambda: fake_upstream.stats["started"] == STREAMS, timeout=20)
    upstream_port = int(fake_upstream.base_url.rsplit(":", 1)[1].split("/")[0])
    victim = next(p for p in gunicorn.worker_pids() if _connections(p, upstream_port))

    os.kill(victim, signal.SIGKILL)
    clients.join(30)

    sent = Counter(r["headers"]["X-Client-Request-Id"] for r in fake_upstream.requests)
    assert len(sent) == STREAMS and set(sent.values()) == {1}
    assert any(isinstance(o, str) for o in outcomes)  # the victim's streams broke
    time.sleep(TTL + 0.5)  # the victim's sign of life expires
    assert journal.recover() > 0
    assert journal.recover() == 0  # a second run finds nothing left to do

    recorded = Counter(
        UsageRecord.objects.filter(api_key_id=key.id).values_list("client_request_id", flat=True)
    )
    assert recorded == sent
    lost = [r for r in records_of(key) if r.estimate_reason == "usage_missing:worker_lost"]
    assert lost and all(r.estimated and r.cost_usd > 0 for r in lost)
    # The survivor's leases go back within a second of their end.
    assert wait_for(
        lambda: spend_counter(redis_client, key, "d") == recorded_micros(key), timeout=10
    ), (spend_counter(redis_client, key, "d"), recorded_micros(key))
    assert not list(redis_client.scan_iter(match="pb:journal*"))
