"""The Redis backend of admission: one Lua script per request (or per lease,
below), the clock taken from Redis, so every worker on every host shares one
exact view. The scripts are files of their own in gateway/lua/, composed once
at import.

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
import logging
import time
from dataclasses import dataclass

from gateway import lua
from gateway.db import run_db
from gateway.limiter import WINDOW_MS, Reservation, Verdict, actual, spent_since
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
WINDOW_TTL_MS = WINDOW_MS + LEASE_MS
LEASES = "pb:leases"  # every lease not returned yet, scored by its end

# The scripts, composed once (gateway/lua/: each file says what it does,
# its KEYS and ARGV).
ADMIT = lua.source(
    "admit.lua",
    WINDOW_MS=WINDOW_MS,
    WINDOW_TTL_MS=WINDOW_TTL_MS,
    LEASE_MS=LEASE_MS,
    LEASE_SHARE=LEASE_SHARE,
    LEASE_RECORD_TTL_MS=LEASE_RECORD_TTL_MS,
)
RELEASE = lua.source("release.lua")
RECLAIM = lua.source("reclaim.lua")
SETTLE = lua.source("settle.lua", WINDOW_MS=WINDOW_MS)
REBUILD = lua.source("rebuild.lua")
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
        script = lua.sync_script(client, SETTLE)
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


def reclaim_leases(older_than_ms: int = RECLAIM_AFTER_MS) -> int:
    """Return the leases that ended more than `older_than_ms` ago and were
    never returned (their worker was killed): what their requests did not
    settle leaves the budget counters. Returns how many."""
    from purebridge.redis import sync_client

    client = sync_client()
    script = lua.sync_script(client, RECLAIM)
    before = lua.redis_now_ms(client) - older_than_ms
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
    since = lua.redis_now_ms(client) - 60_000
    members: list[bytes] = client.zrangebyscore(window_key(key_id), f"({since}", "+inf")  # type: ignore[assignment]
    counts = [member.rsplit(b"|", 2)[1:] for member in members]
    requests = sum(int(r) for r, _ in counts)
    tokens = sum(int(t) for _, t in counts)
    return requests, max(tokens, 0)
