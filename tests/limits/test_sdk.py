"""What the real OpenAI SDK, with its retries on, does with PureBridge's refusals."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from gateway.lua import redis_now_ms, sums_key, window_key
from tests.helpers import USER_HI


@pytest.fixture
def sdk(live):
    """The OpenAI SDK with its default-ish retries, for a given key."""
    clients = []

    def make(secret: str) -> openai.OpenAI:
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=secret, max_retries=2, timeout=20)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_sdk_raises_at_once_on_an_exhausted_budget_without_retrying(
    sdk, make_key, models, fake_upstream, usage_records, stream
):
    """$0.06 a day; a request reserves $0.058 and costs $0.038: after one
    request there is no room for another."""
    key, secret = make_key(daily_budget_usd=Decimal("0.06"))
    client = sdk(secret)
    client.chat.completions.create(model="flat", messages=USER_HI, max_tokens=5)
    usage_records()

    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="flat", messages=USER_HI, max_tokens=5, stream=stream)

    assert refused.value.code == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert [(r.status, r.error_type) for r in usage_records()] == [
        (200, ""),
        (429, "insufficient_quota:daily"),
    ]
    assert fake_upstream.stats["hits"] == 1


def test_sdk_waits_out_retry_after_on_an_rpm_limit_and_then_succeeds(
    sdk, make_key, models, fake_upstream, usage_records, redis_client
):
    """RPM 1, and an earlier request admitted 58 s ago by Redis's clock (the
    window the admission script keeps): the next one is refused with a
    Retry-After of about 2 s, which the SDK waits out before trying again."""
    key, secret = make_key(rpm_limit=1)
    redis_client.zadd(
        window_key(key.account_id, key.id), {"earlier|1|0": redis_now_ms(redis_client) - 58_000}
    )
    redis_client.hset(sums_key(key.account_id, key.id), mapping={"r": 1, "t": 0})

    answer = sdk(secret).chat.completions.create(model="flat", messages=USER_HI, max_tokens=5)

    assert answer.choices[0].message.content
    assert [(r.status, r.error_type) for r in usage_records()] == [
        (429, "rate_limit_exceeded"),
        (200, ""),
    ]
    assert fake_upstream.stats["hits"] == 1
    # Admitted by Redis (not the fallback of a Redis taken for down): the
    # earlier entry left the window, the new one is in it.
    assert redis_client.zrange(window_key(key.account_id, key.id), 0, -1) != [b"earlier|1|0"]
    assert redis_client.hget(sums_key(key.account_id, key.id), "r") == b"1"
