"""The admission script's window at its edges, against real Redis: entries
and corrections leaving it, corrections that come too late."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.limiter_redis import RedisLimiter
from gateway.lua import redis_now_ms, sums_key, window_key
from tests.limits.support import (
    admit_all,
    key_info,
    settled,
    spend_counter,
    window_sums,
)


@pytest.mark.parametrize(
    ("limits", "gone", "left"),
    [
        # RPM only: what leaves carries no tokens.
        ({"rpm_limit": 10}, {"old|1|0": 0}, (0, 0)),
        # Only a correction leaves: no requests.
        ({"tpm_limit": 10_000}, {"old:settled|0|-5": -5, "new|1|100": 100}, (1, 100)),
        ({"rpm_limit": 10, "tpm_limit": 10_000}, {"old|1|50": 50}, (0, 0)),
    ],
)
def test_what_leaves_the_window_leaves_its_sums(make_key, redis_client, limits, gone, left):
    key, info, windows, reservation = key_info(make_key, redis_client, **limits)
    now = redis_now_ms(redis_client)
    for member in gone:
        # "new" entries are recent, the others a minute and a second old.
        redis_client.zadd(
            window_key(key.account_id, key.id),
            {member: now - (1_000 if "new" in member else 61_000)},
        )
    requests = sum(1 for m in gone if "|1|" in m)
    redis_client.hset(
        sums_key(key.account_id, key.id), mapping={"r": requests, "t": sum(gone.values())}
    )
    tokens = 10 if info.tpm_limit else 0

    [verdict] = admit_all([RedisLimiter()], info, windows, [reservation(0, tokens=tokens, cost=0)])

    assert verdict.status == "ok"
    assert window_sums(redis_client, key) == (left[0] + 1, left[1] + tokens)
    assert verdict.requests == left[0] + 1


def test_a_correction_after_the_window_let_its_entry_go_is_dropped(make_key, redis_client):
    """A request settled after its entry left the window (a stream longer than
    a minute, say): its reservation left with the entry, so the correction
    changes nothing, whether the window is still there (other requests) or
    gone, and does not bring back a window without an expiry."""
    key, info, windows, reservation = key_info(
        make_key, redis_client, tpm_limit=10_000, daily_budget_usd=Decimal(10)
    )
    long, recent = reservation(0, tokens=100, cost=1_000), reservation(1, tokens=100, cost=1_000)
    admit_all([RedisLimiter()], info, windows, [long, recent])
    # As if admitted a minute ago: its entry left the window.
    long.window_ms -= 61_000
    redis_client.zrem(window_key(key.account_id, key.id), f"{long.request_id}|1|100")
    redis_client.hset(sums_key(key.account_id, key.id), mapping={"r": 1, "t": 100})

    RedisLimiter().settle([settled(key, long, 60, 10, "0.000700")])

    assert redis_client.zrange(window_key(key.account_id, key.id), 0, -1) == [
        f"{recent.request_id}|1|100".encode()
    ]
    assert window_sums(redis_client, key) == (1, 100)

    redis_client.delete(
        window_key(key.account_id, key.id), sums_key(key.account_id, key.id)
    )  # a minute later, all gone
    recent.window_ms = redis_now_ms(redis_client)  # settled while still in its window
    RedisLimiter().settle([settled(key, recent, 60, 10, "0.000700")])

    assert not redis_client.exists(window_key(key.account_id, key.id))
    assert not redis_client.exists(sums_key(key.account_id, key.id))
    assert spend_counter(redis_client, key, "d") == 2 * 700
