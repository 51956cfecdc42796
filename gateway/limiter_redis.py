"""The Redis backend of admission: one Lua script per request (or per lease,
below), the clock taken from Redis, so every worker on every host shares one
exact view.

Leases: a key far from all its limits (every limit at least 64 times what a
lease takes) has a worker reserve many requests at once, and that worker then
admits them itself for up to LEASE_MS, with no Redis call on their path. A lease
is reserved exactly as the same requests one by one would be (its window entry
counts them from the moment it is granted until a minute after it ends, so a
sliding window never sees more than the limit), so limits still hold exactly,
across workers and hosts; what a worker did not use goes back when the lease
ends (and reclaim_leases, a beat task, returns the leases of workers killed
before they could). A key near a limit is admitted request by request, and so
is a key one worker sees less often than once per LEASE_IDLE_MS. While a worker asks for a
lease, the key's other requests there wait for it (one round trip, as their
own would take) rather than each ask for a lease of its own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass

from gateway.db import run_db
from gateway.limiter import Reservation, Verdict, actual, spent_since
from purebridge.redis_pipe import Script
from usage import budgets
from usage.budgets import Window

log = logging.getLogger(__name__)

LEASE_MS = 1000  # how long a worker admits from one lease
LEASE_SHARE = 64  # a lease takes at most 1/64 of what is left of any limit
LEASE_MIN = 8  # requests: smaller leases are not worth their bookkeeping
LEASE_MAX = 1024
LEASE_IDLE_MS = 2 * LEASE_MS  # a key asked for less often than this is not leased
LEASE_WAITS = 3  # times a request waits for a lease asked for by another
# A lease its worker never returned (it was killed) is reclaimed this long
# after its end. (A worker that cannot reach Redis keeps trying to return it.)
RECLAIM_AFTER_MS = 10 * 60_000
RELEASE_RETRY_S = 5.0
RELEASE_WAIT_S = 5.0  # a stopping worker waits this long for its returns
# A lease's record outlives any reclaim (a backstop if none runs).
LEASE_RECORD_TTL_MS = 24 * 3600_000
# A window keeps entries a minute past their score; a lease's is its end.
WINDOW_TTL_MS = 60_000 + LEASE_MS
LEASES = "pb:leases"  # every lease not returned yet, scored by its end

# Lua shared by the scripts. NOW: Redis's clock in ms. GIVE_BACK(first,
# granted, micros): take `micros` a lease did not use out of the budget
# counters KEYS[first..], those (re)built from the usage records after the
# lease was granted excepted: they never held it.
NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
GIVE_BACK = """
local function give_back(first, granted, micros)
  if micros <= 0 then return end
  for i = first, #KEYS do
    local rebuilt = redis.call('HGET', KEYS[i], 'rebuilt')
    if rebuilt and tonumber(rebuilt) <= granted then
      redis.call('HINCRBY', KEYS[i], 'spent', 0 - micros)
    end
  end
end
"""

# KEYS: the key's window (a sorted set), its sums (a hash: requests `r`,
#       tokens `t`), one counter per budget window, then the request's
#       admission marker, its lease's record and LEASES.
# ARGV: rpm, tpm, tokens, request id, cost (micros), number of windows, retry
#       (1: this request asked before), lease asked (requests, 0: none), then
#       each window's limit (micros).
# The window holds an entry per admission, "id|requests|tokens" scored by its
# time, and the sums of the entries it holds (each added and subtracted once):
# the requests and tokens of the last minute, exactly (RPM 60 is 60 in any
# minute). A lease is one entry for all its requests, scored at its end, and a
# record (a hash: granted `g`, micros reserved `m`, micros of its requests
# settled `s`, its budget counters `w`) that whoever returns it deletes, so
# that it is returned once.
# A retry is exact: when the reply to an admission is lost (a broken
# connection, a timeout) and the request asks again, the script finds the
# first admission (its window entry, else its marker, written only for keys
# with no RPM or TPM limit) and answers with it and its lease instead of
# reserving twice. A lease is granted whole or not at all, so that a retry
# can find it by name.
# Every Redis call a script makes costs a few microseconds on the request
# path: the first try skips the retry lookup, and RPM and TPM share one window.
# (Lua writes a negative zero as "-0", which HINCRBY refuses: amounts taken
# away are written 0 - n.)
ADMIT = (
    NOW
    + f"""
local window, ttl, lease_ms, share = 60000, {WINDOW_TTL_MS}, {LEASE_MS}, {LEASE_SHARE}
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cost, nwin, ask = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[8])
local member = ARGV[4] .. '|1|' .. ARGV[3]
local marker, record = KEYS[3 + nwin], KEYS[4 + nwin]
local windowed = rpm > 0 or tpm > 0
if ARGV[7] == '1' then
  local admitted, lease = nil, 0
  if windowed then
    admitted = redis.call('ZSCORE', KEYS[1], member)
  else
    admitted = redis.call('GET', marker)
  end
  if admitted then
    if ask > 0 and redis.call('EXISTS', record) == 1 then lease = ask end
    return {{'ok', 0, 0, 0, -1, 0, tonumber(admitted), lease}}
  end
  ask = 0  -- the first try never got here: no lease, as the worker returns one found on a retry
end
local requests, used = 0, 0
if windowed then
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
  if #old > 0 then
    local gone_r, gone_t = 0, 0
    for _, entry in ipairs(old) do
      local r, n = string.match(entry, '|(%d+)|(-?%d+)$')
      gone_r, gone_t = gone_r + tonumber(r), gone_t + tonumber(n)
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
    requests = redis.call('HINCRBY', KEYS[2], 'r', 0 - gone_r)
    used = redis.call('HINCRBY', KEYS[2], 't', 0 - gone_t)
  else
    local sums = redis.call('HMGET', KEYS[2], 'r', 't')
    requests, used = tonumber(sums[1] or '0'), tonumber(sums[2] or '0')
  end
  local full
  if rpm > 0 and requests >= rpm then
    full = 'rpm'
  elseif tpm > 0 and used + tokens > tpm then
    full = 'tpm'
  end
  if full then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    local retry = window
    if oldest[2] then retry = math.max(tonumber(oldest[2]) + window - now, 0) end
    return {{full, retry, requests, used, -1, 0, now, 0}}
  end
end
local lease = ask
if rpm > 0 and (rpm - requests - 1) < share * ask then lease = 0 end
if tpm > 0 and (tpm - used - tokens) < share * ask * tokens then lease = 0 end
for i = 1, nwin do
  local spent = redis.call('HGET', KEYS[2 + i], 'spent')
  if not spent then return {{'missing', 0, requests, used, i - 1, 0, now, 0}} end
  local limit = tonumber(ARGV[8 + i])
  spent = tonumber(spent)
  if spent + cost > limit then
    return {{'budget', 0, requests, used, i - 1, spent, now, 0}}
  end
  if limit - spent - cost < share * ask * cost then lease = 0 end
end
if windowed then
  redis.call('ZADD', KEYS[1], now, member)
  if lease > 0 then
    redis.call('ZADD', KEYS[1], now + lease_ms, 'L' .. ARGV[4] .. '|' .. lease .. '|' .. lease * tokens)
  end
  redis.call('HINCRBY', KEYS[2], 'r', 1 + lease)
  redis.call('HINCRBY', KEYS[2], 't', tokens * (1 + lease))
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  redis.call('SET', marker, now, 'PX', window)
end
for i = 1, nwin do redis.call('HINCRBY', KEYS[2 + i], 'spent', cost * (1 + lease)) end
if lease > 0 then
  redis.call('HSET', record, 'g', now, 'm', cost * lease, 's', 0,
             'w', table.concat(KEYS, ',', 3, 2 + nwin))
  redis.call('PEXPIRE', record, {LEASE_RECORD_TTL_MS})
  redis.call('ZADD', KEYS[5 + nwin], now + lease_ms, ARGV[4])
end
return {{'ok', 0, requests + 1, used + tokens, -1, 0, now, lease}}
"""
)

# KEYS: the key's window, its sums, the lease's record, LEASES, then the
#       budget windows.
# ARGV: the lease's window entry, its score, its requests and tokens used,
#       the request id that asked for it, its micros not used.
# The lease's entry is replaced by one for the requests it admitted (kept to
# the same end), and what it did not use leaves the sums and budget counters
# (those rebuilt since it was granted never held it).
RELEASE = (
    GIVE_BACK
    + """
local lease = redis.call('HMGET', KEYS[3], 'g', 'x')
local granted = lease[1]
if not granted or lease[2] then return 0 end  -- returned already, or reclaimed
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[5])
local member, unused_micros = ARGV[1], tonumber(ARGV[6])
local lease_r, lease_t = string.match(member, '|(%d+)|(-?%d+)$')
if redis.call('ZREM', KEYS[1], member) == 1 then
  local used_r, used_t = tonumber(ARGV[3]), tonumber(ARGV[4])
  if used_r > 0 then
    redis.call('ZADD', KEYS[1], ARGV[2], member .. ':used|' .. used_r .. '|' .. used_t)
  end
  redis.call('HINCRBY', KEYS[2], 'r', used_r - tonumber(lease_r))
  redis.call('HINCRBY', KEYS[2], 't', used_t - tonumber(lease_t))
end
give_back(5, tonumber(granted), unused_micros)
return 1
"""
)

# KEYS: LEASES, the lease's record, then its budget windows.
# ARGV: the request id that asked for it.
# A lease its worker never returned: what its requests did not settle goes
# back to the budget counters. (Its window entry left the window long ago.)
# Its record stays, marked reclaimed (`x`), until it expires: a request of
# the lease settled later adds its whole cost, its reservation being gone.
RECLAIM = (
    GIVE_BACK
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
local lease = redis.call('HMGET', KEYS[2], 'g', 'm', 's', 'x')
if not lease[1] or lease[4] then return 0 end
redis.call('HSET', KEYS[2], 'x', 1)
local unused = tonumber(lease[2]) - tonumber(lease[3])
give_back(3, tonumber(lease[1]), unused)
return unused
"""
)

# KEYS: the key's window, its sums, the record of the lease that admitted the
#       request (or any name, when none did), then the budget windows.
# ARGV: admitted at (ms), its window entry's score (ms), request id, token
#       correction, real cost, reserved cost (micros), 1 if a lease admitted it.
# A token correction is an entry of its own beside the request's (or its
# lease's), with the same score: it leaves the window with it. One whose
# entry has left the window already (or the window itself) is dropped: the
# tokens left with the entry.
# A budget counter is a hash: `spent`, and `rebuilt`, when it was (re)built from
# the usage records. Built before the request was admitted, it holds the
# reservation: add the correction. Built after, while the request was in
# flight, it holds neither the reservation nor (the record was not written yet)
# the real cost: add the real cost. A counter that is gone is skipped: it will
# be rebuilt from the records, this one included. A request a lease admitted
# also counts on the lease's record, should the lease have to be reclaimed; a
# lease reclaimed already took the request's reservation back: add the real
# cost.
SETTLE = (
    NOW
    + """
local admitted, dtokens = tonumber(ARGV[1]), tonumber(ARGV[4])
local cost, reserved = tonumber(ARGV[5]), tonumber(ARGV[6])
if dtokens ~= 0 and tonumber(ARGV[2]) > now - 60000 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3] .. ':settled|0|' .. dtokens)
  redis.call('HINCRBY', KEYS[2], 't', dtokens)
end
if reserved > 0 then
  local reclaimed = false
  if ARGV[7] == '1' then
    local lease = redis.call('HMGET', KEYS[3], 'g', 'x')
    if lease[2] then
      reclaimed = true
    elseif lease[1] then
      redis.call('HINCRBY', KEYS[3], 's', reserved)
    end
  end
  for i = 4, #KEYS do
    local rebuilt = redis.call('HGET', KEYS[i], 'rebuilt')
    if rebuilt then
      if tonumber(rebuilt) <= admitted and not reclaimed then
        redis.call('HINCRBY', KEYS[i], 'spent', cost - reserved)
      else
        redis.call('HINCRBY', KEYS[i], 'spent', cost)
      end
    end
  end
end
return 0
"""
)

# KEYS: the counter. ARGV: spent (micros), seconds to keep it (0: always).
REBUILD = (
    NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'rebuilt', now)
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""
)


ADMIT_SCRIPT = Script(ADMIT)
RELEASE_SCRIPT = Script(RELEASE)
REBUILD_SCRIPT = Script(REBUILD)


def window_key(key_id: int) -> str:
    """The key's one-minute window: a sorted set of its admissions."""
    return f"pb:rl:{key_id}:window"


def sums_key(key_id: int) -> str:
    """The requests (`r`) and tokens (`t`) its window holds."""
    return f"pb:rl:{key_id}:sums"


def lease_record(request_id: str) -> str:
    """The record of the lease the request asked for."""
    return f"pb:lease:{request_id}"


@functools.cache
def _sync_script(client, source: str):
    """A script for a redis-py client (loaded into a pipeline when Redis does
    not have it)."""
    return client.register_script(source)


@dataclass(slots=True)
class Lease:
    """Requests one worker reserved for a key, to admit itself until `until`."""

    request_id: str  # the request that asked for it
    member: str  # its window entry
    terms: tuple  # the key's limits it was granted under
    windows: tuple[str, ...]  # the budget counters it reserved in
    granted_ms: int  # by Redis's clock
    ends_ms: int  # its window entry's score
    until: float  # the event loop's clock: not used from then on
    requests: int
    tokens: int
    micros: int
    # The key's window as it was granted (this request and the lease
    # included), for the x-ratelimit headers of the requests it admits.
    window_requests: int
    window_tokens: int
    used_requests: int = 0
    used_tokens: int = 0
    used_micros: int = 0

    def draw(self, reservation: Reservation) -> bool:
        """Admit the request from this lease, if it fits what is left."""
        if (
            self.used_requests >= self.requests
            or self.used_tokens + reservation.tokens > self.tokens
            or self.used_micros + reservation.cost_micros > self.micros
        ):
            return False
        self.used_requests += 1
        self.used_tokens += reservation.tokens
        self.used_micros += reservation.cost_micros
        reservation.window_ms = self.ends_ms
        reservation.lease = self.request_id
        return True

    def half_used(self) -> bool:
        """More than half of it is used: a request it has no room for ends it
        (else that request is admitted on its own, and the lease goes on)."""
        return (
            self.used_requests >= self.requests
            or 2 * self.used_tokens > self.tokens
            or 2 * self.used_micros > self.micros
        )

    def verdict(self) -> Verdict:
        """Admitted from the lease: the window as the lease found it, with the
        requests and tokens it admitted so far."""
        return Verdict(
            "ok",
            requests=self.window_requests - self.requests + self.used_requests,
            tokens=self.window_tokens - self.tokens + self.used_tokens,
            admitted_ms=self.granted_ms,
        )


def _terms(key, windows: list[Window]) -> tuple:
    return (key.rpm_limit or 0, key.tpm_limit or 0, tuple((w.key, w.limit_micros) for w in windows))


@dataclass(slots=True)
class _Seen:
    """What one worker knows of a key's leases."""

    asked_at: float  # when it last asked Redis to admit a request of the key
    # Requests its last lease admitted; -1: none, so the next ask is for none.
    used: int = 0
    leasable: bool = True  # its last lease asked for was granted
    # A lease asked for and not answered yet: the key's other requests wait
    # for it rather than each ask for a lease of its own.
    asking: asyncio.Future | None = None
    waiting: int = 0  # requests waiting for it


class RedisLimiter:
    name = "redis"
    MAX_SEEN = 10_000  # keys it remembers

    def __init__(self) -> None:
        self._leases: dict[int, Lease] = {}  # key id -> the lease this worker admits from
        self._seen: dict[int, _Seen] = {}
        self._releasing: set[asyncio.Task] = set()

    async def admit(
        self, key, reservation: Reservation, windows: list[Window], *, retry: bool = False
    ) -> Verdict:
        """`retry`: this request asked before and may have been admitted (the
        reply was lost)."""
        from purebridge.redis import pipe

        loop = asyncio.get_running_loop()
        terms = _terms(key, windows)
        if not retry:
            alone = False
            for _ in range(LEASE_WAITS):
                lease = self._leases.get(key.id)
                if lease is not None:
                    if lease.terms == terms and loop.time() < lease.until:
                        if lease.draw(reservation):
                            return lease.verdict()
                        alone = not lease.half_used()
                    if not alone:
                        self._end(key.id, lease)  # used up, over, or for other limits
                seen = self._seen.get(key.id)
                if alone or seen is None or seen.asking is None or not seen.leasable:
                    break
                seen.waiting += 1
                try:
                    await asyncio.shield(seen.asking)  # cancelled, it leaves the ask be
                finally:
                    seen.waiting -= 1
            reservation.lease_asked = 0 if alone else self._lease_size(key.id, loop.time())

        redis = pipe()
        rid = reservation.request_id
        keys = [
            window_key(key.id),
            sums_key(key.id),
            *(w.key for w in windows),
            f"pb:adm:{rid}",
            lease_record(rid),
            LEASES,
        ]
        argv = [
            key.rpm_limit or 0,
            key.tpm_limit or 0,
            reservation.tokens,
            rid,
            reservation.cost_micros,
            len(windows),
            1 if retry else 0,
            reservation.lease_asked,
            *[w.limit_micros for w in windows],
        ]
        seen = None  # the key's, while this request asks for its lease
        if reservation.lease_asked and not retry:
            seen = self._seen[key.id]  # _lease_size made it
            seen.asking = loop.create_future()
        try:
            at = loop.time()
            raw = await redis.evalsha(ADMIT_SCRIPT, keys, argv)
            if raw[0] == b"missing":
                # A window not seen yet, or counters Redis lost: rebuild them all
                # from the usage records, then decide again.
                for window in windows:
                    await rebuild(redis, key.id, window)
                raw = await redis.evalsha(ADMIT_SCRIPT, keys, argv)
            verdict = _verdict(raw)
            reservation.window_ms = verdict.admitted_ms
            granted = int(raw[7])
            if granted:
                lease = self._lease(
                    reservation, verdict, granted, terms, until=at + LEASE_MS / 1000
                )
                if retry:
                    # Found again: its end by Redis's clock is not this
                    # worker's to know (the first reply may be long lost).
                    self._return(key.id, lease)
                else:
                    self._grant(key.id, lease)
            if seen is not None:
                seen.leasable = granted > 0
                if not granted:  # the next ask is half this one
                    seen.used = reservation.lease_asked // 4
        finally:
            if seen is not None and seen.asking is not None:
                seen.asking.set_result(None)  # the requests waiting for it go on
                seen.asking = None
        return verdict

    def _lease_size(self, key_id: int, at: float) -> int:
        """Requests to ask a lease for: none for a key this worker has not
        asked Redis for within LEASE_IDLE_MS (a lease would mostly go back
        unused), whose last lease admitted nothing, or while it asks for one
        already; else twice what its last lease admitted or the requests
        waiting."""
        seen = self._seen.get(key_id)
        if seen is None:
            if len(self._seen) >= self.MAX_SEEN:
                self._forget_idle(at)
            self._seen[key_id] = _Seen(asked_at=at)
            return 0
        idle = at - seen.asked_at > LEASE_IDLE_MS / 1000
        seen.asked_at = at
        if seen.used < 0:
            seen.used = 0
            return 0
        if idle or seen.asking is not None:  # one lease asked for at a time
            return 0
        return min(max(LEASE_MIN, 2 * seen.used, 2 * seen.waiting), LEASE_MAX)

    def _forget_idle(self, at: float) -> None:
        """Forget the keys not asked for within LEASE_IDLE_MS (all but those
        with an ask in flight, if that is not enough)."""
        idle = LEASE_IDLE_MS / 1000
        kept = {k: s for k, s in self._seen.items() if at - s.asked_at <= idle or s.asking}
        if len(kept) >= self.MAX_SEEN // 2:
            kept = {k: s for k, s in kept.items() if s.asking}
        self._seen = kept

    def _lease(self, reservation, verdict, granted, terms, until) -> Lease:
        return Lease(
            request_id=reservation.request_id,
            member=f"L{reservation.request_id}|{granted}|{granted * reservation.tokens}",
            terms=terms,
            windows=reservation.windows,
            granted_ms=verdict.admitted_ms,
            ends_ms=verdict.admitted_ms + LEASE_MS,
            until=until,
            requests=granted,
            tokens=granted * reservation.tokens,
            micros=granted * reservation.cost_micros,
            window_requests=verdict.requests + granted,
            window_tokens=verdict.tokens + granted * reservation.tokens,
        )

    def _grant(self, key_id: int, lease: Lease) -> None:
        current = self._leases.get(key_id)
        if current is not None:  # granted to another request meanwhile
            self._end(key_id, current)
        self._leases[key_id] = lease
        asyncio.get_running_loop().call_at(lease.until, self._end, key_id, lease)

    def _end(self, key_id: int, lease: Lease) -> None:
        """Stop admitting from the lease and give back what it did not use."""
        if self._leases.get(key_id) is not lease:
            return  # ended already
        del self._leases[key_id]
        seen = self._seen.get(key_id)
        if seen is not None:
            seen.used = lease.used_requests or -1
        self._return(key_id, lease)

    def _return(self, key_id: int, lease: Lease) -> None:
        task = asyncio.get_running_loop().create_task(self._release(key_id, lease))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _release(self, key_id: int, lease: Lease) -> None:
        """Return the lease's unused part, trying again while Redis fails, for
        as long as this worker runs (a lease it never returns is reclaimed)."""
        from purebridge.redis import pipe

        keys = [window_key(key_id), sums_key(key_id), lease_record(lease.request_id), LEASES]
        argv: list[str | int] = [
            lease.member,
            lease.ends_ms,
            lease.used_requests,
            lease.used_tokens,
            lease.request_id,
            lease.micros - lease.used_micros,
        ]
        failed = False
        while True:
            try:
                await pipe().evalsha(RELEASE_SCRIPT, [*keys, *lease.windows], argv)
                return
            except Exception:
                if not failed:
                    log.warning("returning a lease failed; trying again", exc_info=True)
                failed = True
                await asyncio.sleep(RELEASE_RETRY_S)

    async def release_all(self) -> None:
        """End every lease of this worker (it is stopping) and wait, at most
        RELEASE_WAIT_S, for the returns (those that fail are reclaimed)."""
        for key_id, lease in list(self._leases.items()):
            self._end(key_id, lease)
        if self._releasing:
            _, pending = await asyncio.wait(self._releasing, timeout=RELEASE_WAIT_S)
            for task in pending:
                task.cancel()

    def forget(self) -> None:
        """Drop every lease without returning it (tests start afresh)."""
        self._leases.clear()
        self._seen.clear()

    def settle(self, entries) -> None:
        from purebridge.redis import sync_client

        client = sync_client()
        script = _sync_script(client, SETTLE)
        with client.pipeline(transaction=False) as pipe:
            for entry in entries:
                r = entry.reservation
                tokens, cost = actual(entry)
                script(
                    keys=[
                        window_key(r.key_id),
                        sums_key(r.key_id),
                        lease_record(r.lease or r.request_id),
                        *r.windows,
                    ],
                    args=[
                        r.admitted_ms,
                        r.window_ms,
                        r.request_id,
                        tokens - r.tokens if r.tokens else 0,  # a key without TPM reserved none
                        cost,
                        r.cost_micros,
                        1 if r.lease else 0,
                    ],
                    client=pipe,
                )
            pipe.execute()


def redis_now_ms(client) -> int:
    """Redis's clock (ms), which the scripts' windows run on."""
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


def reclaim_leases(older_than_ms: int = RECLAIM_AFTER_MS) -> int:
    """Return the leases that ended more than `older_than_ms` ago and were
    never returned (their worker was killed): what their requests did not
    settle leaves the budget counters. Returns how many."""
    from purebridge.redis import sync_client

    client = sync_client()
    script = _sync_script(client, RECLAIM)
    before = redis_now_ms(client) - older_than_ms
    reclaimed = 0
    ended: list[bytes] = client.zrangebyscore(LEASES, "-inf", before)  # type: ignore[assignment]
    for raw in ended:
        request_id = raw.decode()
        record = lease_record(request_id)
        counters = client.hget(record, "w")
        windows = counters.decode().split(",") if counters else []  # type: ignore[union-attr]
        unused = script(keys=[LEASES, record, *windows], args=[request_id])
        if unused:
            log.warning("reclaimed a lease never returned: %s micros", unused)
        reclaimed += 1
    return reclaimed


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


async def rebuild(redis, key_id: int, window: Window) -> None:
    spent = await run_db(spent_since, key_id, window)
    # Only if still missing: another worker may have rebuilt it (and admitted
    # requests) meanwhile.
    ttl = window.ttl(budgets.now())  # the clock tests move
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
    since = redis_now_ms(client) - 60_000
    members: list[bytes] = client.zrangebyscore(window_key(key_id), f"({since}", "+inf")  # type: ignore[assignment]
    counts = [member.rsplit(b"|", 2)[1:] for member in members]
    requests = sum(int(r) for r, _ in counts)
    tokens = sum(int(t) for _, t in counts)
    return requests, max(tokens, 0)
