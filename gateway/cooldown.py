"""Routes that keep failing rest for a while, across every worker and host.

Each worker keeps the cooldowns it knows of in memory, so choosing a route
costs no network call. Only failures talk to Redis: they are counted there in a
short window shared by all workers; the worker whose failure crosses the
threshold cools the route and publishes it, and every worker applies the
message. An upstream's `Retry-After` cools the route for exactly that long.
Without Redis (embedded mode) the same happens within the one process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from django.conf import settings

log = logging.getLogger(__name__)

FAILURES_TO_COOL = 3
FAILURE_WINDOW = 30.0  # seconds in which FAILURES_TO_COOL failures cool a route
COOL_SECONDS = 30.0
MAX_RETRY_AFTER = 600.0  # an upstream may not park a route for longer than this


class Cooldowns:
    def __init__(self) -> None:
        self._until: dict[int, float] = {}  # route id -> monotonic deadline
        self._failures: dict[int, deque[float]] = {}  # embedded mode only

    def cooling(self, route_id: int) -> bool:
        until = self._until.get(route_id)
        if until is None:
            return False
        if until <= time.monotonic():
            del self._until[route_id]  # cooled long enough: half-open, try again
            return False
        return True

    def apply(self, route_id: int, seconds: float) -> None:
        if seconds <= 0:
            self._until.pop(route_id, None)
        else:
            self._until[route_id] = time.monotonic() + seconds

    def clear(self) -> None:
        self._until.clear()
        self._failures.clear()

    async def report_failure(self, route_id: int, retry_after: float | None = None) -> None:
        if retry_after:
            await self._cool(route_id, min(retry_after, MAX_RETRY_AFTER))
            return
        if await self._count_failure(route_id) >= FAILURES_TO_COOL:
            await self._cool(route_id, COOL_SECONDS)

    async def _count_failure(self, route_id: int) -> int:
        if settings.REDIS_URL:
            from purebridge.redis import async_client

            key = f"pb:route:{route_id}:failures"
            try:
                # On the request path: a Redis that does not answer costs it
                # one deadline at most, and the failure is counted here.
                async with asyncio.timeout(_redis_deadline()):
                    async with async_client().pipeline(transaction=True) as pipe:
                        pipe.incr(key)
                        pipe.expire(key, int(FAILURE_WINDOW), nx=True)
                        count, _ = await pipe.execute()
                return int(count)
            except Exception:
                log.warning("could not count a route failure in Redis", exc_info=True)
        now = time.monotonic()
        failures = self._failures.setdefault(route_id, deque())
        failures.append(now)
        while failures and failures[0] < now - FAILURE_WINDOW:
            failures.popleft()
        return len(failures)

    async def _cool(self, route_id: int, seconds: float) -> None:
        log.warning("cooling route %s for %.0fs", route_id, seconds)
        self.apply(route_id, seconds)
        self._failures.pop(route_id, None)
        if not settings.REDIS_URL:
            return
        from gateway.invalidation import CHANNEL
        from purebridge.redis import async_client

        try:
            async with asyncio.timeout(_redis_deadline()):
                client = async_client()
                await client.delete(f"pb:route:{route_id}:failures")
                await client.set(f"pb:route:{route_id}:cool", "1", px=int(seconds * 1000))
                await client.publish(CHANNEL, f"cool:{route_id}:{seconds:.3f}")
        except Exception:
            log.warning("could not share a route cooldown through Redis", exc_info=True)

    async def load_shared(self) -> None:
        """Pick up cooldowns set before this worker subscribed."""
        from purebridge.redis import async_client

        client = async_client()
        async for key in client.scan_iter(match="pb:route:*:cool", count=500):
            ttl_ms = await client.pttl(key)
            if ttl_ms > 0:
                route_id = int(key.split(b":")[2])
                self.apply(route_id, ttl_ms / 1000)


def _redis_deadline() -> float:
    return settings.REDIS_CONNECT_TIMEOUT + settings.REDIS_TIMEOUT


cooldowns = Cooldowns()
