"""Admission abandoned or asked twice: a client that leaves while Redis is
still deciding (the script runs all the same, so its reservation must be
released with the request's record), and an admission retried after its
reply was lost (answered with the first, not reserved twice)."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import httpx2
import pytest

from gateway.lua import sums_key, window_key
from tests.helpers import post_chat, wait_for
from tests.limits.support import chat, key_info, spend_counter

# Keeps Redis busy (a script blocks every other client) for ARGV[1] ms.
BUSY = """
local t = redis.call('TIME')
local start = tonumber(t[1]) * 1000000 + tonumber(t[2])
repeat
  t = redis.call('TIME')
until tonumber(t[1]) * 1000000 + tonumber(t[2]) - start > tonumber(ARGV[1]) * 1000
return 1
"""


def test_a_client_gone_during_admission_leaves_no_reservation_behind(
    live, http, make_key, models, usage_records, redis_client
):
    key, secret = make_key(daily_budget_usd=Decimal("10"))
    assert post_chat(http, secret, chat("flat", max_tokens=5)).status_code == 200
    [first] = usage_records()
    spent = spend_counter(redis_client, key, "d")
    assert spent and spent > 0

    busy = threading.Thread(target=redis_client.eval, args=(BUSY, 0, 600))
    busy.start()
    try:
        with pytest.raises(httpx2.TimeoutException):
            # Admission waits behind the busy script; the client gives up first.
            httpx2.post(
                f"{live.url}/v1/chat/completions",
                json=chat("flat", max_tokens=5),
                headers={"Authorization": f"Bearer {secret}"},
                timeout=0.2,
            )
    finally:
        busy.join()

    assert wait_for(lambda: len(usage_records()) == 2, timeout=5)
    gone = next(r for r in usage_records() if r.request_id != first.request_id)
    assert gone.cost_usd == 0
    # The reservation the script made after the client left was released.
    assert spend_counter(redis_client, key, "d") == spent


@pytest.mark.parametrize(
    "rates",
    [
        {"rpm_limit": 100, "tpm_limit": 100_000},  # found by its entry in the window
        {"tpm_limit": 100_000},
        {},  # a budget only: by its marker
    ],
)
def test_an_admission_asked_again_is_answered_without_reserving_twice(
    make_key, redis_client, rates
):
    from gateway.limiter_redis import limiter

    key, info, windows, reserve = key_info(
        make_key, redis_client, daily_budget_usd=Decimal("10"), **rates
    )
    tokens = 500 if info.tpm_limit else 0
    reservation = reserve(0, tokens=tokens, cost=12_345)

    async def twice():
        first = await limiter.admit(info, reservation, windows)
        # The reply was lost (a broken connection): the request asks again.
        return first, await limiter.admit(info, reservation, windows, retry=True)

    first, again = asyncio.run(twice())

    assert first.status == again.status == "ok"
    assert again.admitted_ms == first.admitted_ms
    assert spend_counter(redis_client, key, "d") == 12_345  # one reservation, not two
    assert redis_client.zcard(window_key(key.account_id, key.id)) == (1 if rates else 0)
    assert int(redis_client.hget(sums_key(key.account_id, key.id), "t") or 0) == tokens
