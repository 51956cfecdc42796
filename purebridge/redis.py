"""The process's Redis clients (one sync, one async per event loop), created lazily.

Every command waits at most REDIS_TIMEOUT for its answer (REDIS_CONNECT_TIMEOUT
to connect): a Redis that does not answer is down, as one that refuses is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

import redis
import redis.asyncio
import redis.asyncio.retry
from django.conf import settings
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError
from redis.retry import Retry

from purebridge.redis_pipe import RedisPipe

# A pooled connection that broke (Redis restarted) fails its next command;
# retry it on a fresh connection (the pool may hold several such) instead of
# taking Redis for down. Not a timeout: asking a Redis that does not answer
# again would only make the caller wait several deadlines for the same news.
RETRIES = 3
# The event loop's own delays count against an async read's timeout: under a
# thousand open streams a worker's loop can lag by a second, which must not
# read as "Redis is down" (budgets would fail closed). The async client
# serves pub/sub, cool-downs and /health, which bound their waits themselves;
# admission's pipe tells a late reply from a busy loop (redis_pipe.py).
ASYNC_SOCKET_TIMEOUT = 5
# How long a request waits for a free pooled connection before it counts as
# a Redis failure.
POOL_WAIT_TIMEOUT = 5


def _options(socket_timeout: float) -> dict:
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": settings.REDIS_CONNECT_TIMEOUT,
    }


# Per event loop. Not weak: a client's connections hold their loop. Entries of
# loops that were closed (tests, asyncio.run) are dropped when a new one is made.
_async_clients: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
_pipes: dict[asyncio.AbstractEventLoop, RedisPipe] = {}


@functools.cache
def sync_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL,
        retry=Retry(NoBackoff(), RETRIES, supported_errors=(ConnectionError,)),
        **_options(settings.REDIS_TIMEOUT),
    )


def async_client() -> redis.asyncio.Redis:
    """This event loop's client, on a bounded pool of REDIS_POOL_SIZE connections."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        _forget_closed_loops()
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=settings.REDIS_POOL_SIZE,
            timeout=POOL_WAIT_TIMEOUT,
            retry=redis.asyncio.retry.Retry(
                NoBackoff(), RETRIES, supported_errors=(ConnectionError,)
            ),
            **_options(max(ASYNC_SOCKET_TIMEOUT, settings.REDIS_TIMEOUT)),
        )
        client = redis.asyncio.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client


def pipe() -> RedisPipe:
    """This event loop's pipelined connection, for commands on the request
    path (purebridge/redis_pipe.py says why it is not redis-py)."""
    loop = asyncio.get_running_loop()
    connection = _pipes.get(loop)
    if connection is None:
        _forget_closed_loops()
        connection = _pipes[loop] = RedisPipe(
            settings.REDIS_URL,
            timeout=settings.REDIS_TIMEOUT,
            connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
        )
    return connection


async def close_loop_clients() -> None:
    """Close this event loop's clients (a web worker shutting down)."""
    loop = asyncio.get_running_loop()
    connection = _pipes.pop(loop, None)
    if connection is not None:
        connection.close()
    client = _async_clients.pop(loop, None)
    if client is not None:
        await client.aclose()


def _forget_closed_loops() -> None:
    for loop in [loop for loop in _pipes if loop.is_closed()]:
        with contextlib.suppress(RuntimeError):  # "Event loop is closed"
            _pipes.pop(loop).close()
    for loop in [loop for loop in _async_clients if loop.is_closed()]:
        # Its connections cannot be closed on a closed loop; let them go.
        del _async_clients[loop]


def check_url() -> None:
    """Fail at start on a REDIS_URL the request path could not use."""
    if settings.REDIS_URL:
        RedisPipe(settings.REDIS_URL)
