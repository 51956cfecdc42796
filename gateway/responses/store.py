"""Conversation state behind `previous_response_id` for upstreams that keep
none (chat-only and Anthropic routes): each stored response holds the whole
conversation up to and including its output, scoped to the account, kept for
PUREBRIDGE_RESPONSE_RETENTION_SECONDS. Redis in production; in the embedded
default an in-process map (lost on restart)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

import orjson
from django.conf import settings
from redis.exceptions import RedisError

from gateway.errors import ServiceUnavailable

log = logging.getLogger(__name__)

LOCAL_LIMIT = 10_000  # entries kept in the embedded default


class _Local:
    def __init__(self) -> None:
        self.items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def put(self, key: str, value: bytes, ttl: float) -> None:
        self.items[key] = (time.monotonic() + ttl, value)
        self.items.move_to_end(key)
        while len(self.items) > LOCAL_LIMIT:
            self.items.popitem(last=False)

    def get(self, key: str) -> bytes | None:
        entry = self.items.get(key)
        if entry is None or entry[0] < time.monotonic():
            self.items.pop(key, None)
            return None
        return entry[1]


_local = _Local()


def _key(account_id: int, response_id: str) -> str:
    return f"pb:resp:{account_id}:{response_id}"


async def conversation_put(*, account_id: int, response_id: str, items: list[dict]) -> None:
    """Keep the conversation; with Redis down it is not kept (and logged): the
    answer it follows was delivered and charged, and stands."""
    ttl = settings.PUREBRIDGE_RESPONSE_RETENTION_SECONDS
    value = orjson.dumps(items)
    if settings.REDIS_URL:
        from purebridge.redis import pipe

        try:
            await pipe().execute_idempotent(
                "SET", _key(account_id, response_id), value, "EX", int(ttl)
            )
        except (RedisError, OSError) as error:
            log.warning("response %s not kept for previous_response_id: %s", response_id, error)
    else:
        _local.put(_key(account_id, response_id), value, ttl)


async def conversation_get(*, account_id: int, response_id: str) -> list[dict] | None:
    if settings.REDIS_URL:
        from purebridge.redis import pipe

        try:
            value = await pipe().execute_idempotent("GET", _key(account_id, response_id))
        except (RedisError, OSError):
            raise ServiceUnavailable(
                "The previous response cannot be read right now; try again shortly.",
                headers={"retry-after": "5"},
            ) from None
    else:
        value = _local.get(_key(account_id, response_id))
    return orjson.loads(value) if value else None
