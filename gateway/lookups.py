"""Which key lookups exist, so that a made-up key costs no database query.

Every web worker keeps a Bloom filter of the lookups keys answer to: each
key's current lookup and, during a rotation's grace period, its previous
one. A presented key whose lookup is not in it is refused at once (gateway/
auth.py); one that is (a real key, or a rare false positive) goes on to the
key cache and, on a miss, to the database, as before. A negative cache per
lookup cannot do this: a flood of made-up keys brings a new lookup each time.

The filter is kept current three ways:

- a key created, rotated or changed publishes `key:<lookup>` for each of its
  lookups (gateway/invalidation.py), and every worker adds them as the message
  arrives: at once in the process that made the change and, through Redis, in
  the others a moment later. That moment is not nothing: a worker's event
  loop may read the key's first request before the message, or Redis may
  answer the key's maker before it writes to every subscriber. So each
  lookup is first announced in Redis (announced_key, for announced_seconds),
  before the message and before the maker has the secret; a worker asks
  Redis about a lookup its filter lacks (one pipelined EXISTS, never the
  database) and adds it if announced. While Redis cannot answer, such a
  lookup goes to the key cache and the database, as without a filter: a key
  made during a Redis outage works at once, and a flood then costs queries;
- while the filter is in use, every PUREBRIDGE_CACHE_TTL / 2 it adds the
  lookups of the keys changed since it last looked (an index on updated_at),
  with OVERLAP_SECONDS of overlap for transactions still open then and clocks
  out of step: without Redis, or when a message was lost, a new key works
  everywhere within PUREBRIDGE_CACHE_TTL;
- every REBUILD_SECONDS, and each time the worker subscribes to Redis again
  (it may have missed messages), it is built anew from every key: the lookups
  of deleted keys and of past grace periods leave it, and it is sized again.

A filter that has not been refreshed for PUREBRIDGE_CACHE_TTL (the database
was down, the worker was idle) is not trusted: until it is refreshed every
lookup may exist, as before there was a filter. PUREBRIDGE_CACHE_TTL = 0
turns it off.

Memory, per worker: 10 to 20 bits (BITS_PER_LOOKUP, the table rounded up to
a power of two) for each lookup it has room for, and it has room for twice
the lookups found at its last build, at least MIN_CAPACITY: 128 KiB up to
~50,000 keys, 256 KiB at 100,000, 4 MiB at a million, never more than MAX_BITS
(16 MiB, room for ~13 million lookups; past that its false positives grow,
and with them the made-up keys that cost a query). Within its room false
positives stay under 1% (near 0.02% just after a build); a lookup added past
its room asks for a rebuild. Time: a made-up key costs one hash and a few bit
tests (~1 µs) and, with Redis, one pipelined EXISTS; a build reads every key
in a worker thread (~1 s for a million keys, sharing the GIL with the loop).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from redis.exceptions import RedisError

from gateway.db import run_db
from gateway.worker import worker_id

log = logging.getLogger(__name__)

BITS_PER_LOOKUP = 10
HASHES = 7  # the best number for 10 bits a lookup: ~0.8% false positives when full
MIN_CAPACITY = 65_536
MAX_BITS = 1 << 27
REBUILD_SECONDS = 600.0
OVERLAP_SECONDS = 60.0
RETRY_SECONDS = 5.0  # after a failed load: the database is not asked more often
REDIS_RETRY_SECONDS = 1.0


def announced_key(lookup: str) -> str:
    """The Redis key saying that a key answers to `lookup` since lately."""
    return f"pb:lookup:{lookup}"


def announced_seconds() -> int:
    """How long an announcement lasts: until every worker's filter has the
    lookup from its message or, failing that, from its next refresh."""
    return int(2 * settings.PUREBRIDGE_CACHE_TTL + OVERLAP_SECONDS)


class BloomFilter:
    """A set of strings that answers "maybe" or "certainly not", in a fixed
    bytearray. Its hash is Python's own (SipHash, seeded per process)."""

    __slots__ = ("bits", "mask", "capacity", "count")

    def __init__(self, capacity: int) -> None:
        size = 1 << max(capacity * BITS_PER_LOOKUP - 1, 8).bit_length()
        size = min(size, MAX_BITS)
        self.bits = bytearray(size >> 3)
        self.mask = size - 1
        self.capacity = min(capacity, size // BITS_PER_LOOKUP)
        self.count = 0

    @classmethod
    def sized_for(cls, lookups: int) -> BloomFilter:
        return cls(max(MIN_CAPACITY, 2 * lookups))

    def add(self, item: str) -> None:
        h = hash(item)
        # Double hashing: HASHES positions from one 64-bit hash; the step is
        # odd, so the positions differ in a power-of-two table.
        a, b = h & 0xFFFFFFFF, (h >> 32) | 1
        bits, mask = self.bits, self.mask
        for i in range(HASHES):
            p = (a + i * b) & mask
            bits[p >> 3] |= 1 << (p & 7)
        self.count += 1

    def __contains__(self, item: str) -> bool:
        h = hash(item)
        a, b = h & 0xFFFFFFFF, (h >> 32) | 1
        bits, mask = self.bits, self.mask
        for i in range(HASHES):
            p = (a + i * b) & mask
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
        return True

    @property
    def full(self) -> bool:
        return self.count > self.capacity and len(self.bits) * 8 < MAX_BITS


def _build() -> tuple[BloomFilter, datetime]:
    """Every lookup a key answers to now, and when they were read."""
    from keys.models import ApiKey

    now = timezone.now()
    built = BloomFilter.sized_for(ApiKey.objects.count())
    rows = ApiKey.objects.values_list("lookup", "previous_lookup", "previous_valid_until")
    for lookup, previous, previous_until in rows.iterator(chunk_size=10_000):
        built.add(lookup)
        if previous and previous_until is not None and previous_until > now:
            built.add(previous)
    return built, now


def _changed_since(since: datetime) -> tuple[list[str], datetime]:
    """The lookups of the keys changed since `since`, and when they were read."""
    from keys.models import ApiKey

    now = timezone.now()
    rows = ApiKey.objects.filter(updated_at__gte=since).values_list("lookup", "previous_lookup")
    return [lookup for pair in rows for lookup in pair if lookup], now


class KnownLookups:
    """One worker's filter, and when it is refreshed and rebuilt."""

    def __init__(self) -> None:
        self._filter: BloomFilter | None = None
        self._lock = threading.Lock()  # add() comes from any thread
        self._adds: list[str] | None = None  # added while a build runs
        self._trusted_until = 0.0  # time.monotonic()
        self._refresh_after = 0.0
        self._rebuild_after = 0.0
        self._rebuild = True
        self._read_at: datetime | None = None  # the database's keys, as of then
        self._task: asyncio.Task | None = None
        self._redis_down_until = 0.0

    def may_exist(self, lookup: str) -> bool:
        """False only when no key answers to `lookup`. Called on the event loop,
        on a key-cache miss."""
        if settings.PUREBRIDGE_CACHE_TTL <= 0:
            return True
        now = time.monotonic()
        if now >= self._refresh_after:
            self._refresh_soon()
        known = self._filter
        if known is None or now >= self._trusted_until:
            return True
        return lookup in known

    async def refuses(self, lookup: str) -> bool:
        """True when no key answers to `lookup`: refuse it without a query."""
        if self.may_exist(lookup):
            return False
        if not settings.REDIS_URL:
            return True
        announced = await self._announced(lookup)
        if announced:
            self.add(lookup)
        # Unknown (Redis unreachable): a key made meanwhile was announced to
        # no one, and its message is lost; the database decides, as it did
        # before there was a filter.
        return announced is False

    async def _announced(self, lookup: str) -> bool | None:
        """Whether a key was announced with `lookup` lately, None if Redis
        cannot say. Its message may not have been read yet: a worker's event
        loop may see the first request before it, or Redis may send it to this
        worker after answering the key's maker (gateway/invalidation.py
        announces first, then publishes)."""
        if time.monotonic() < self._redis_down_until:
            return None
        from purebridge.redis import pipe

        redis = pipe()
        try:
            announced, remembered = await asyncio.gather(
                redis.execute("EXISTS", announced_key(lookup)),
                redis.execute("EXISTS", self._mark()),
            )
        except RedisError:
            self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            return None
        if not remembered:
            # Redis lost what it held since this filter was read (a restart
            # without persistence): announcements made before are gone too,
            # so the filter is not trusted until it is built anew.
            self.rebuild()
            return None
        return bool(announced)

    def add(self, lookup: str) -> None:
        """A key may answer to `lookup` from now on (from any thread)."""
        with self._lock:
            if self._filter is not None:
                self._filter.add(lookup)
                if self._filter.full:
                    self._rebuild, self._refresh_after = True, 0.0
            if self._adds is not None:
                self._adds.append(lookup)

    def rebuild(self) -> None:
        """Build anew from every key, soon, and trust nothing meanwhile (called
        on the event loop: the worker has just subscribed to invalidations, or
        Redis lost its data, and messages may have been missed)."""
        self._rebuild, self._refresh_after = True, 0.0
        self._trusted_until = 0.0
        self._refresh_soon()

    def _mark(self) -> str:
        """The Redis key this worker sets once its filter is read: gone, it
        says Redis lost its data since (gateway/worker.py names the worker)."""
        return f"pb:lookups:read:{worker_id()}"

    async def _remember(self) -> None:
        if not settings.REDIS_URL:
            return
        from purebridge.redis import pipe

        try:
            await pipe().execute("SET", self._mark(), "1", "EX", int(2 * REBUILD_SECONDS))
        except RedisError:
            log.warning("could not mark the key lookups as read in Redis", exc_info=True)

    @property
    def trusted(self) -> bool:
        return self._filter is not None and time.monotonic() < self._trusted_until

    def _refresh_soon(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._task
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        self._task = loop.create_task(self._refresh())

    async def refresh(self) -> None:
        """Refresh now (or wait for the refresh under way)."""
        self._refresh_soon()
        assert self._task is not None
        await asyncio.shield(self._task)

    async def _refresh(self) -> None:
        # Again while a rebuild was asked for during the last one: a worker
        # that subscribed while a build was reading must build once more.
        while True:
            started = time.monotonic()
            rebuild = self._rebuild or self._filter is None or started >= self._rebuild_after
            try:
                if rebuild:
                    await self._build(started)
                else:
                    await self._add_changed()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("could not read the key lookups (%s); every lookup may exist", error)
                self._refresh_after = time.monotonic() + RETRY_SECONDS
                return
            await self._remember()
            ttl = settings.PUREBRIDGE_CACHE_TTL
            self._trusted_until = started + ttl
            self._refresh_after = started + ttl / 2
            if not self._rebuild:
                return

    async def _build(self, started: float) -> None:
        self._rebuild = False
        with self._lock:
            self._adds = []
        try:
            built, read_at = await run_db(_build)
        except BaseException:
            with self._lock:
                self._adds = None
            self._rebuild = True
            raise
        with self._lock:
            # What arrived while the build read is in it, or in these.
            for lookup in self._adds or ():
                built.add(lookup)
            self._adds = None
            self._filter = built
        self._read_at = read_at
        self._rebuild_after = started + REBUILD_SECONDS

    async def _add_changed(self) -> None:
        assert self._read_at is not None
        since = self._read_at - timedelta(seconds=OVERLAP_SECONDS)
        lookups, read_at = await run_db(_changed_since, since)
        for lookup in lookups:
            self.add(lookup)
        self._read_at = read_at


known_lookups = KnownLookups()
