"""Each event loop's Redis client holds a bounded pool: a burst of concurrent
commands waits for a connection instead of opening one per command."""

from __future__ import annotations

import asyncio
import time

from purebridge import redis as pb_redis

POOL = 3
COMMANDS = 12
HOLD_S = 0.2  # each command holds its connection this long (BLPOP on an empty list)


async def test_a_burst_shares_a_bounded_pool(settings) -> None:
    settings.REDIS_POOL_SIZE = POOL
    loop = asyncio.get_running_loop()
    pb_redis._async_clients.pop(loop, None)
    client = pb_redis.async_client()
    try:
        started = time.monotonic()
        answers = await asyncio.gather(
            *(client.blpop([f"pb:test:pool:{n}"], timeout=HOLD_S) for n in range(COMMANDS))
        )
        elapsed = time.monotonic() - started

        assert answers == [None] * COMMANDS  # every command completed, none failed
        opened = sum(n for n, _ in client.connection_pool.get_connection_count())
        assert 1 <= opened <= POOL
        # COMMANDS / POOL rounds of HOLD_S each: they waited for connections.
        assert elapsed >= (COMMANDS // POOL) * HOLD_S * 0.9
    finally:
        await client.aclose()
        pb_redis._async_clients.pop(loop, None)
