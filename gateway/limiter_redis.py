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

# KEYS: the key's window (a sorted set), its tokens sum, one counter per
#       budget window, then the request's admission marker.
# ARGV: rpm, tpm, tokens, request id, cost (micros), number of windows, retry
#       (1: this request asked before), then each window's limit (micros).
# The window holds one entry per admission in the last minute, "id|tokens"
# scored by its time: its size is the requests of the last minute, exactly
# (RPM 60 is 60 in any minute), and the sum of its tokens (kept beside it,
# each entry added and subtracted once) the tokens reserved.
# A retry is exact: when the reply to an admission is lost (a broken
# connection, a timeout) and the request asks again, the script finds the
# first admission (its window entry, else its marker, written only for keys
# with no RPM or TPM limit) and answers with it instead of reserving twice.
# Every Redis call a script makes costs a few microseconds on the request
# path: the first try skips the retry lookup, and RPM and TPM share one window.
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = 60000
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cost, nwin = tonumber(ARGV[5]), tonumber(ARGV[6])
local member = ARGV[4] .. '|' .. ARGV[3]
local marker = KEYS[3 + nwin]
local windowed = rpm > 0 or tpm > 0
if ARGV[7] == '1' then
  local admitted
  if windowed then
    admitted = redis.call('ZSCORE', KEYS[1], member)
  else
    admitted = redis.call('GET', marker)
  end
  if admitted then return {'ok', 0, 0, 0, -1, 0, tonumber(admitted)} end
end
local requests, used = 0, 0
if windowed then
  if tpm > 0 then
    local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
    if #old > 0 then
      local expired = 0
      for _, entry in ipairs(old) do
        expired = expired + tonumber(string.match(entry, '|(-?%d+)$'))
      end
      redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
      used = redis.call('DECRBY', KEYS[2], expired)
    else
      used = tonumber(redis.call('GET', KEYS[2]) or '0')
    end
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  end
  requests = redis.call('ZCARD', KEYS[1])
  local full
  if rpm > 0 and requests >= rpm then
    full = 'rpm'
  elseif tpm > 0 and used + tokens > tpm then
    full = 'tpm'
  end
  if full then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    local retry = window
    if oldest[2] then retry = tonumber(oldest[2]) + window - now end
    return {full, retry, requests, used, -1, 0, now}
  end
end
for i = 1, nwin do
  local spent = redis.call('HGET', KEYS[2 + i], 'spent')
  if not spent then return {'missing', 0, requests, used, i - 1, 0, now} end
  if tonumber(spent) + cost > tonumber(ARGV[7 + i]) then
    return {'budget', 0, requests, used, i - 1, tonumber(spent), now}
  end
end
if windowed then
  redis.call('ZADD', KEYS[1], now, member)
  redis.call('PEXPIRE', KEYS[1], window)
  requests = requests + 1
  if tpm > 0 then
    used = redis.call('INCRBY', KEYS[2], tokens)
    redis.call('PEXPIRE', KEYS[2], window)
  end
else
  redis.call('SET', marker, now, 'PX', window)
end
for i = 1, nwin do redis.call('HINCRBY', KEYS[2 + i], 'spent', cost) end
return {'ok', 0, requests, used, -1, 0, now}
"""

# KEYS: the key's window, its tokens sum, then the budget windows.
# ARGV: admitted at (ms), request id, tokens reserved, tokens used, real cost,
#       reserved cost (micros).
# The request's window entry is replaced by one with the tokens it used (if it
# is still there: an entry that left the window took its reservation along).
# A budget counter is a hash: `spent`, and `rebuilt`, when it was (re)built from
# the usage records. Built before the request was admitted, it holds the
# reservation: add the correction. Built after, while the request was in
# flight, it holds neither the reservation nor (the record was not written yet)
# the real cost: add the real cost. A counter that is gone is skipped: it will
# be rebuilt from the records, this one included.
SETTLE = """
local admitted, reserved_tokens, used_tokens = tonumber(ARGV[1]), ARGV[3], ARGV[4]
local cost, reserved = tonumber(ARGV[5]), tonumber(ARGV[6])
if reserved_tokens ~= used_tokens and redis.call('EXISTS', KEYS[2]) == 1
    and redis.call('ZREM', KEYS[1], ARGV[2] .. '|' .. reserved_tokens) == 1 then
  redis.call('ZADD', KEYS[1], admitted, ARGV[2] .. '|' .. used_tokens)
  redis.call('INCRBY', KEYS[2], tonumber(used_tokens) - tonumber(reserved_tokens))
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
    """The key's one-minute window and its tokens sum."""
    return [f"pb:rl:{key_id}:win", f"pb:rl:{key_id}:toksum"]


@functools.cache
def _settle_script(client):
    """SETTLE for the usage writer's client (redis-py loads it into a pipeline
    when Redis does not have it)."""
    return client.register_script(SETTLE)


class RedisLimiter:
    name = "redis"

    async def admit(
        self, key, reservation: Reservation, windows: list[Window], *, retry: bool = False
    ) -> Verdict:
        """`retry`: this request asked before and may have been admitted (the
        reply was lost)."""
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
            1 if retry else 0,
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
                script(
                    keys=[*_keys(r.key_id), *r.windows],
                    args=[
                        r.admitted_ms,
                        r.request_id,
                        r.tokens,
                        tokens if r.tokens else 0,  # a key without TPM reserved none
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
    members: list[bytes] = client.zrangebyscore(_keys(key_id)[0], f"({since}", "+inf")  # type: ignore[assignment]
    tokens = sum(int(member.rsplit(b"|", 1)[1]) for member in members)
    return len(members), max(tokens, 0)
