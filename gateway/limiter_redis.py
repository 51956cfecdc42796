"""The Redis backend of admission: one Lua script per request, the clock
taken from Redis, so every worker on every host shares one exact view."""

from __future__ import annotations

import functools
import logging
import time

from gateway import limits
from gateway.db import run_db
from gateway.limits import Reservation, Verdict, Window, actual, to_micros
from purebridge.redis_pipe import Script

log = logging.getLogger(__name__)

# KEYS: requests zset, tokens zset, tokens sum, one counter per budget window,
#       then the request's admission marker.
# ARGV: rpm, tpm, tokens, request id, cost (micros), number of windows, then
#       each window's limit (micros).
# A retry is exact: when the reply to an admission is lost (a broken
# connection, a timeout) and the request asks again, the script finds the
# first admission (the request's entry in the requests or tokens window, else
# its marker, written only for keys with neither) and answers with it instead
# of reserving twice.
# The requests window is a sorted set of admission times: exact, so RPM 60 is
# 60 in any minute. The tokens window is a sorted set of reservations with a
# running sum, each entry added and removed once.
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = 60000
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rid, cost, nwin = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local marker = KEYS[4 + nwin]
local admitted
if rpm > 0 then
  admitted = redis.call('ZSCORE', KEYS[1], rid)
elseif tpm > 0 then
  admitted = redis.call('ZSCORE', KEYS[2], rid .. '|' .. tokens)
else
  admitted = redis.call('GET', marker)
end
if admitted then return {'ok', 0, 0, 0, -1, 0, tonumber(admitted)} end
local requests, used = 0, 0
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  requests = redis.call('ZCARD', KEYS[1])
end
if tpm > 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if #old > 0 then
    local expired = 0
    for _, member in ipairs(old) do
      expired = expired + tonumber(string.match(member, '|(-?%d+)$'))
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
    redis.call('DECRBY', KEYS[3], expired)
  end
  used = tonumber(redis.call('GET', KEYS[3]) or '0')
end
if rpm > 0 and requests >= rpm then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {'rpm', tonumber(oldest[2]) + window - now, requests, used, -1, 0, now}
end
if tpm > 0 then
  if used + tokens > tpm then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    local retry = window
    if oldest[2] then retry = tonumber(oldest[2]) + window - now end
    return {'tpm', retry, requests, used, -1, 0, now}
  end
end
for i = 1, nwin do
  local spent = redis.call('HGET', KEYS[3 + i], 'spent')
  if not spent then return {'missing', 0, requests, used, i - 1, 0, now} end
  if tonumber(spent) + cost > tonumber(ARGV[6 + i]) then
    return {'budget', 0, requests, used, i - 1, tonumber(spent), now}
  end
end
if rpm > 0 then
  redis.call('ZADD', KEYS[1], now, rid)
  redis.call('PEXPIRE', KEYS[1], window)
  requests = requests + 1
end
if tpm > 0 then
  redis.call('ZADD', KEYS[2], now, rid .. '|' .. tokens)
  redis.call('INCRBY', KEYS[3], tokens)
  redis.call('PEXPIRE', KEYS[2], window)
  redis.call('PEXPIRE', KEYS[3], window)
  used = used + tokens
end
for i = 1, nwin do redis.call('HINCRBY', KEYS[3 + i], 'spent', cost) end
if rpm == 0 and tpm == 0 then redis.call('SET', marker, now, 'PX', window) end
return {'ok', 0, requests, used, -1, 0, now}
"""

# KEYS: tokens zset, tokens sum, then the windows. ARGV: admitted at (ms),
# request id, token correction, real cost, reserved cost (micros).
# A budget counter is a hash: `spent`, and `rebuilt`, when it was (re)built from
# the usage records. Built before the request was admitted, it holds the
# reservation: add the correction. Built after, while the request was in
# flight, it holds neither the reservation nor (the record was not written yet)
# the real cost: add the real cost. A counter that is gone is skipped: it will
# be rebuilt from the records, this one included.
SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local admitted, dtokens = tonumber(ARGV[1]), tonumber(ARGV[3])
local cost, reserved = tonumber(ARGV[4]), tonumber(ARGV[5])
if dtokens ~= 0 and admitted > now - 60000 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('ZADD', KEYS[1], admitted, ARGV[2] .. ':settle|' .. dtokens)
  redis.call('INCRBY', KEYS[2], dtokens)
end
if reserved > 0 then
  for i = 3, #KEYS do
    local rebuilt = redis.call('HGET', KEYS[i], 'rebuilt')
    if rebuilt then
      if tonumber(rebuilt) <= admitted then
        redis.call('HINCRBY', KEYS[i], 'spent', cost - reserved)
      else
        redis.call('HINCRBY', KEYS[i], 'spent', cost)
      end
    end
  end
end
return 0
"""

# KEYS: the counter. ARGV: spent (micros), seconds to keep it (0: always).
REBUILD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'rebuilt', now)
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""


ADMIT_SCRIPT = Script(ADMIT)
REBUILD_SCRIPT = Script(REBUILD)


def _keys(key_id: int) -> list[str]:
    return [f"pb:rl:{key_id}:req", f"pb:rl:{key_id}:tok", f"pb:rl:{key_id}:toksum"]


@functools.cache
def _settle_script(client):
    """SETTLE for the usage writer's client (redis-py loads it into a pipeline
    when Redis does not have it)."""
    return client.register_script(SETTLE)


class RedisLimiter:
    name = "redis"

    async def admit(self, key, reservation: Reservation, windows: list[Window]) -> Verdict:
        from purebridge.redis import pipe

        redis = pipe()
        keys = [*_keys(key.id), *(w.key for w in windows), f"pb:adm:{reservation.request_id}"]
        argv = [
            key.rpm_limit or 0,
            key.tpm_limit or 0,
            reservation.tokens,
            reservation.request_id,
            reservation.cost_micros,
            len(windows),
            *[w.limit_micros for w in windows],
        ]
        verdict = _verdict(await redis.evalsha(ADMIT_SCRIPT, keys, argv))
        if verdict.status == "missing":
            # A window not seen yet, or counters Redis lost: rebuild them all
            # from the usage records, then decide again.
            for window in windows:
                await rebuild(redis, key.id, window)
            verdict = _verdict(await redis.evalsha(ADMIT_SCRIPT, keys, argv))
        return verdict

    def settle(self, entries) -> None:
        from purebridge.redis import sync_client

        client = sync_client()
        script = _settle_script(client)
        with client.pipeline(transaction=False) as pipe:
            for entry in entries:
                r = entry.reservation
                tokens, cost = actual(entry)
                keys = _keys(r.key_id)[1:] + list(r.windows)
                script(
                    keys=keys,
                    args=[
                        r.admitted_ms,
                        r.request_id,
                        tokens - r.tokens if r.tokens else 0,
                        cost,
                        r.cost_micros,
                    ],
                    client=pipe,
                )
            pipe.execute()


def _verdict(raw: list) -> Verdict:
    status = raw[0].decode()
    return Verdict(
        status=status,
        retry_after_ms=int(raw[1]),
        requests=int(raw[2]),
        tokens=int(raw[3]),
        window_index=int(raw[4]),
        spent_micros=int(raw[5]),
        admitted_ms=int(raw[6]),
    )


def spent_since(key_id: int, window: Window) -> int:
    """A window's spend from the usage records (micros, rounded up)."""
    from django.db.models import Sum

    from usage.models import UsageRecord

    records = UsageRecord.objects.filter(api_key_id=key_id)
    if window.start is not None:
        records = records.filter(created_at__gte=window.start)
    total = records.aggregate(total=Sum("cost_usd"))["total"]
    return to_micros(total) if total else 0


async def rebuild(redis, key_id: int, window: Window) -> None:
    spent = await run_db(spent_since, key_id, window)
    # Only if still missing: another worker may have rebuilt it (and admitted
    # requests) meanwhile.
    ttl = window.ttl(limits.now())  # the clock tests move
    await redis.evalsha(REBUILD_SCRIPT, [window.key], [spent, ttl or 0])


class _Health:
    down_until = 0.0


def usable() -> bool:
    """False for a second after Redis failed, so a dead Redis costs one
    timeout per second per worker, not one per request."""
    return _Health.down_until <= time.monotonic()


def mark_up() -> None:
    """Redis answered (a health probe): use it again at once."""
    _Health.down_until = 0.0


def mark_down() -> None:
    if usable():
        log.warning("Redis unreachable: budgets fail closed, rate limits per process")
    _Health.down_until = time.monotonic() + 1.0


limiter = RedisLimiter()


def current_rate(key_id: int) -> tuple[int, int]:
    from purebridge.redis import sync_client

    client = sync_client()
    seconds, micros = client.time()
    since = seconds * 1000 + micros // 1000 - 60_000
    requests_key, tokens_key, _ = _keys(key_id)
    requests = client.zcount(requests_key, f"({since}", "+inf")
    members: list[bytes] = client.zrangebyscore(tokens_key, f"({since}", "+inf")  # type: ignore[assignment]
    tokens = sum(int(member.rsplit(b"|", 1)[1]) for member in members)
    return int(requests), max(tokens, 0)
