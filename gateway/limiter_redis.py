"""The Redis backend of admission: one Lua script per request (or per lease),
the clock taken from Redis, so every worker on every host shares one exact
view. The scripts are files of their own in gateway/lua/, composed once at
import.

Most requests of a busy key are admitted without Redis, from a lease this
worker holds (gateway/leases.py): RedisLimiter.admit draws on it first, and
otherwise asks the admission script, which may grant the key a lease with the
request.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisError

from gateway import lua
from gateway.db import run_db
from gateway.leases import (
    LEASE_MS,
    LEASE_RECORD_TTL_MS,
    LEASE_SHARE,
    LeaseBook,
    lease_record,
    lease_terms,
    leases_key,
)
from gateway.limiter import WINDOW_MS, Reservation, Verdict, actual, spent_in
from gateway.lua import sums_key, window_key
from purebridge.redis_pipe import Script
from usage import budgets
from usage.budgets import Window, account_tag

log = logging.getLogger(__name__)

# A window keeps entries a minute past their score; a lease's is its end.
WINDOW_TTL_MS = WINDOW_MS + LEASE_MS

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
SETTLE = lua.source("settle.lua", WINDOW_MS=WINDOW_MS)
REBUILD = lua.source("rebuild.lua")
ADMIT_SCRIPT = Script(ADMIT)
REBUILD_SCRIPT = Script(REBUILD)


class TakenForDown(RedisError):
    """Redis is taken for down (usable() is False); not worth a retry."""


class RedisLimiter:
    name = "redis"

    def __init__(self) -> None:
        self.leases = LeaseBook()

    async def admit(
        self, key, reservation: Reservation, windows: list[Window], *, retry: bool = False
    ) -> Verdict:
        """`retry`: this request asked before and may have been admitted (the
        reply was lost)."""
        from purebridge.redis import pipe

        loop = asyncio.get_running_loop()
        terms = lease_terms(key, windows)
        if not retry:
            # Most requests of a busy key end here, so inline: no call more.
            lease = self.leases.held.get(key.id)
            if (
                lease is not None
                and lease.terms == terms
                and loop.time() < lease.until
                and lease.draw(reservation)
            ):
                return lease.verdict()
            drawn = await self.leases.before_asking(key.id, terms, reservation, loop)
            if drawn is not None:
                return drawn
            if not usable():
                # The ask this request waited for failed: Redis is down, and
                # asking again would cost this request a deadline of its own.
                raise TakenForDown("Redis failed while this request waited for it")

        redis = pipe()
        rid, account = reservation.request_id, key.account_id
        keys = [
            window_key(account, key.id),
            sums_key(account, key.id),
            *(w.key for w in windows),
            f"{account_tag(account)}:adm:{rid}",
            lease_record(account, rid),
            leases_key(account),
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
        # The key's, while this request asks for its lease.
        seen = self.leases.ask(key.id, loop) if reservation.lease_asked and not retry else None
        try:
            at = loop.time()
            raw = await redis.evalsha(ADMIT_SCRIPT, keys, argv)
            if raw[0] == b"missing":
                # A window not seen yet, or counters Redis lost: rebuild them all
                # from the usage records, then decide again.
                for window in windows:
                    await rebuild(redis, key, window)
                raw = await redis.evalsha(ADMIT_SCRIPT, keys, argv)
            verdict = _verdict(raw)
            reservation.window_ms = verdict.admitted_ms
            granted = int(raw[7])
            if granted:
                until = at + LEASE_MS / 1000
                self.leases.take(
                    key.id, reservation, verdict, granted, terms, until, found_again=retry
                )
            if seen is not None:
                seen.answered(granted, reservation.lease_asked)
        finally:
            if seen is not None:
                seen.ask_over()
        return verdict

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
                        window_key(r.account_id, r.key_id),
                        sums_key(r.account_id, r.key_id),
                        lease_record(r.account_id, r.lease or r.request_id),
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


async def rebuild(redis, key, window: Window) -> None:
    spent = await run_db(spent_in, key, window)
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


def current_rate(account_id: int, key_id: int) -> tuple[int, int]:
    from purebridge.redis import sync_client

    client = sync_client()
    since = lua.redis_now_ms(client) - 60_000
    window = window_key(account_id, key_id)
    members: list[bytes] = client.zrangebyscore(window, f"({since}", "+inf")  # type: ignore[assignment]
    counts = [member.rsplit(b"|", 2)[1:] for member in members]
    requests = sum(int(r) for r, _ in counts)
    tokens = sum(int(t) for _, t in counts)
    return requests, max(tokens, 0)
