"""Admission leases: a key far from all its limits (every limit at least
LEASE_SHARE times what a lease takes) has a worker reserve many requests at
once, and that worker then admits them itself for up to LEASE_MS, with no Redis
call on their path (gateway/limiter_redis.py RedisLimiter.admit draws on them).

A lease is reserved by the admission script exactly as the same requests one
by one would be (its window entry counts them from the moment it is granted
until a minute after it ends, so a sliding window never sees more than the
limit), so limits still hold exactly, across workers and hosts. What a worker
did not use goes back when the lease ends (gateway/lua/release.lua), and
reclaim_leases, a beat task, returns the leases of workers killed before they
could (gateway/lua/reclaim.lua). A key near a limit is admitted request by
request, and so is a key one worker sees less often than once per
LEASE_IDLE_MS. While a worker asks for a lease, the key's other requests there
wait for it (one round trip, as their own would take) rather than each ask
for a lease of its own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from gateway import lua
from gateway.limiter import Reservation, Verdict
from gateway.lua import sums_key, window_key
from gateway.worker import worker_id
from purebridge.redis_pipe import Script
from usage.budgets import Window, account_tag

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
# A worker's own leases not returned yet ("<account>:<request id>"), scored
# by their end: if it is killed, the journal's recovery reclaims them at once
# (gateway/journal.py). Written beside the scripts, never by one.
WORKER_LEASES = "pb:leases:"

RELEASE = lua.source("release.lua")
RECLAIM = lua.source("reclaim.lua")
RELEASE_SCRIPT = Script(RELEASE)


def lease_record(account_id: int, request_id: str) -> str:
    """The record of the lease the request asked for."""
    return f"{account_tag(account_id)}:lease:{request_id}"


def leases_key(account_id: int) -> str:
    """The account's leases not returned yet, scored by their end (per
    account, as a script touches only its account's keys)."""
    return f"{account_tag(account_id)}:leases"


LEASES_MATCH = "pb:{a*}:leases"  # every account's, for reclaim_leases


def lease_terms(key, windows: list[Window]) -> tuple:
    """The key's limits, as a lease is granted under them."""
    return (key.rpm_limit or 0, key.tpm_limit or 0, tuple((w.key, w.limit_micros) for w in windows))


@dataclass(slots=True)
class Lease:
    """Requests one worker reserved for a key, to admit itself until `until`."""

    account_id: int
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

    def held_as(self) -> str:
        """Its member of the worker's set (WORKER_LEASES)."""
        return f"{self.account_id}:{self.request_id}"

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

    def answered(self, granted: int, asked: int) -> None:
        """Redis granted `granted` of the `asked` requests of a lease (all or none)."""
        self.leasable = granted > 0
        if not granted:  # the next ask is half this one
            self.used = asked // 4

    def ask_over(self) -> None:
        """The ask is answered, or failed: the requests waiting for it go on."""
        if self.asking is not None:
            self.asking.set_result(None)
            self.asking = None


class LeaseBook:
    """One worker's leases, a key each, and what it knows of the keys it may
    ask a lease for."""

    MAX_SEEN = 10_000  # keys it remembers

    def __init__(self) -> None:
        self.held: dict[int, Lease] = {}  # key id -> the lease this worker admits from
        self._seen: dict[int, _Seen] = {}
        self._releasing: set[asyncio.Task] = set()

    async def before_asking(
        self, key_id: int, terms: tuple, reservation: Reservation, loop: asyncio.AbstractEventLoop
    ) -> Verdict | None:
        """For a request the key's lease here did not admit (none, over, or
        no room), before it asks Redis: end that lease if it is over, used up
        or for other limits; wait for a lease another request of the key is
        asking for, and draw on it. Else None, and `reservation.lease_asked`
        is the lease this request asks for.

        (The first draw repeats the one RedisLimiter.admit made inline, which
        failed and changed nothing: it stays, so the loop reads whole.)"""
        alone = False
        for _ in range(LEASE_WAITS):
            lease = self.held.get(key_id)
            if lease is not None:
                if lease.terms == terms and loop.time() < lease.until:
                    if lease.draw(reservation):
                        return lease.verdict()
                    alone = not lease.half_used()
                if not alone:
                    self._end(key_id, lease)  # used up, over, or for other limits
            seen = self._seen.get(key_id)
            if alone or seen is None or seen.asking is None or not seen.leasable:
                break
            seen.waiting += 1
            try:
                await asyncio.shield(seen.asking)  # cancelled, it leaves the ask be
            finally:
                seen.waiting -= 1
        reservation.lease_asked = 0 if alone else self._lease_size(key_id, loop.time())
        return None

    def ask(self, key_id: int, loop: asyncio.AbstractEventLoop) -> _Seen:
        """A request asks Redis for a lease of the key: the key's other
        requests here wait for the answer (tell it with ask_over())."""
        seen = self._seen[key_id]  # _lease_size made it
        seen.asking = loop.create_future()
        return seen

    def take(
        self,
        key_id: int,
        reservation: Reservation,
        verdict: Verdict,
        granted: int,
        terms: tuple,
        until: float,
        *,
        found_again: bool,
    ) -> None:
        """Admit the key's requests from the lease Redis granted with this
        request, until `until`. One a retry found again is returned at once:
        its end by Redis's clock is not this worker's to know (the first reply
        may be long lost)."""
        lease = Lease(
            account_id=reservation.account_id,
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
        if found_again:
            self._return(key_id, lease)
        else:
            self._grant(key_id, lease)

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

    def _grant(self, key_id: int, lease: Lease) -> None:
        from purebridge.redis import pipe

        current = self.held.get(key_id)
        if current is not None:  # granted to another request meanwhile
            self._end(key_id, current)
        self.held[key_id] = lease
        # Not waited for: it is written before any request it admits goes
        # upstream, and a failure only leaves the lease to reclaim_leases.
        pipe().submit("ZADD", WORKER_LEASES + worker_id(), lease.ends_ms, lease.held_as())
        asyncio.get_running_loop().call_at(lease.until, self._end, key_id, lease)

    def _end(self, key_id: int, lease: Lease) -> None:
        """Stop admitting from the lease and give back what it did not use."""
        if self.held.get(key_id) is not lease:
            return  # ended already
        del self.held[key_id]
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

        account = lease.account_id
        keys = [
            window_key(account, key_id),
            sums_key(account, key_id),
            lease_record(account, lease.request_id),
            leases_key(account),
        ]
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
                pipe().submit("ZREM", WORKER_LEASES + worker_id(), lease.held_as())
                return
            except Exception:
                if not failed:
                    log.warning("returning a lease failed; trying again", exc_info=True)
                failed = True
                await asyncio.sleep(RELEASE_RETRY_S)

    async def release_all(self) -> None:
        """End every lease of this worker (it is stopping) and wait, at most
        RELEASE_WAIT_S, for the returns (those that fail are reclaimed)."""
        for key_id, lease in list(self.held.items()):
            self._end(key_id, lease)
        if self._releasing:
            _, pending = await asyncio.wait(self._releasing, timeout=RELEASE_WAIT_S)
            for task in pending:
                task.cancel()

    def forget(self) -> None:
        """Drop every lease without returning it (tests start afresh)."""
        self.held.clear()
        self._seen.clear()


def reclaim_worker(client, worker: str) -> int:
    """Return every lease a dead worker held, ended or not (it admits from
    none of them any more); returns how many."""
    script = lua.sync_script(client, RECLAIM)
    held = WORKER_LEASES + worker
    reclaimed = 0
    for raw in client.zrange(held, 0, -1):
        account, _, request_id = raw.decode().partition(":")
        if request_id:  # else held before leases were per account: left to expire
            _reclaim(client, script, int(account), request_id)
            reclaimed += 1
    client.delete(held)
    return reclaimed


def _reclaim(client, script, account_id: int, request_id: str) -> None:
    record = lease_record(account_id, request_id)
    counters = client.hget(record, "w")
    windows = counters.decode().split(",") if counters else []
    unused = script(keys=[leases_key(account_id), record, *windows], args=[request_id])
    if unused:
        log.warning("reclaimed a lease never returned: %s micros", unused)


def reclaim_leases(older_than_ms: int = RECLAIM_AFTER_MS) -> int:
    """Return the leases that ended more than `older_than_ms` ago and were
    never returned (their worker was killed): what their requests did not
    settle leaves the budget counters. Returns how many."""
    from purebridge.redis import sync_client

    client = sync_client()
    script = lua.sync_script(client, RECLAIM)
    before = lua.redis_now_ms(client) - older_than_ms
    reclaimed = 0
    # Each account's set (a scan: the beat task runs every few minutes, and
    # Redis keeps the sets of accounts with no lease out for none).
    for name in client.scan_iter(match=LEASES_MATCH, count=1000):
        account = int(name.decode().removeprefix("pb:{a").partition("}")[0])
        ended: list[bytes] = client.zrangebyscore(name, "-inf", before)  # type: ignore[assignment]
        for raw in ended:
            _reclaim(client, script, account, raw.decode())
            reclaimed += 1
    return reclaimed
