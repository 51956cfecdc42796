"""The process's Redis clients (one sync, one async per event loop), created lazily."""

from __future__ import annotations

import asyncio
import functools
import weakref

import redis
import redis.asyncio
from django.conf import settings
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

# A pooled connection that broke (Redis restarted) fails its next command;
# retry it on a fresh connection (the pool may hold several such) instead of
# taking Redis for down.
_OPTIONS: dict = {
    "socket_timeout": 2,
    "socket_connect_timeout": 2,
    "retry": Retry(NoBackoff(), 3),
    "retry_on_error": [ConnectionError, TimeoutError],
}

_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@functools.cache
def sync_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, **_OPTIONS)


def async_client() -> redis.asyncio.Redis:
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = redis.asyncio.Redis.from_url(settings.REDIS_URL, **_OPTIONS)
        _async_clients[loop] = client
    return client
