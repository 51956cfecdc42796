"""Refusals of no key at all: recorded in full up to a rate, counted beyond it.

A request refused because it carried no PureBridge key (none, not one's
shape, or a lookup no key has: errors.UnknownApiKey) concerns no customer,
and a flood of them must not become a flood of usage records. In each web
worker, per minute:

- the first RECORDED_PER_CLIENT from each client address, and at most
  RECORDED_PER_MINUTE in all, get a usage record like any request (request
  id, endpoint, status, latency), so that a mistyped key can be found;
- the others are counted per client address, and once the minute is over
  the counts are added to that minute's RefusedTally rows (usage/models.py),
  the same rows for every worker and host. At most MAX_CLIENTS addresses are
  told apart in a minute; those after them are counted as "*".

The refusals counted are answered after PUREBRIDGE_REFUSAL_PAUSE_SECONDS
(0.25 s; at most MAX_PAUSED at a time in a worker, past that at once). A
client that sends keys that do not exist one request after another, as
scanners and broken retry loops do, then sends far fewer of them, and the
worker's other requests keep their share of its event loop: a pause costs a
timer, not CPU. A client's first refusals in a minute, those recorded in
full, are answered at once.

A real key's refusal (disabled, expired, a wrong secret for a lookup a key
has) concerns its owner, is never paused, and always has its own record.

Counts wait in memory until written: at most MAX_CLIENTS + 1 per minute.
While the database cannot take them, each minute waiting is folded into one
"*" count. A graceful shutdown writes what is left (gateway/asgi.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime

from django.conf import settings

from gateway.db import run_db

log = logging.getLogger(__name__)

RECORDED_PER_CLIENT = 10
RECORDED_PER_MINUTE = 100
MAX_CLIENTS = 1_000
OTHERS = "*"
MAX_PAUSED = 256
WRITE_DELAY = 2.0  # seconds into the next minute: the last refusals of the last one settle
RETRY_SECONDS = 60.0

Counts = dict[tuple[int, str], int]  # (minute since the epoch, client) -> refusals


class Refusals:
    """One worker's refusals of no key: which to record, and the counts of the rest."""

    def __init__(self) -> None:
        self._minute = -1
        self._recorded = 0  # this minute, in full
        self._seen: dict[str, int] = {}  # this minute, per client address
        self._counts: Counts = {}  # not written yet
        self._lock = threading.Lock()  # write_all() takes the counts from another thread
        self._write_at = 0.0  # time.monotonic() of the write scheduled, or 0
        self._writing: set[asyncio.Task] = set()
        self._paused = 0

    def record_in_full(self, client: str, at: datetime) -> bool:
        """True: record this refusal as usual. False: it has been counted."""
        minute = int(at.timestamp() // 60)
        if minute > self._minute:
            self._minute, self._recorded, self._seen = minute, 0, {}
        client = client[:64]
        seen = self._seen.get(client)
        if seen is None:
            if len(self._seen) >= MAX_CLIENTS:
                client, seen = OTHERS, RECORDED_PER_CLIENT
            else:
                seen = 0
        self._seen[client] = seen + 1
        if seen < RECORDED_PER_CLIENT and self._recorded < RECORDED_PER_MINUTE:
            self._recorded += 1
            return True
        with self._lock:
            self._counts[minute, client] = self._counts.get((minute, client), 0) + 1
        self._write_later(60 - time.time() % 60 + WRITE_DELAY)
        return False

    async def pause(self) -> None:
        """Hold back the answer to a refusal that was counted."""
        seconds = settings.PUREBRIDGE_REFUSAL_PAUSE_SECONDS
        if not seconds or self._paused >= MAX_PAUSED:
            return
        self._paused += 1
        try:
            await asyncio.sleep(seconds)
        finally:
            self._paused -= 1

    def _write_later(self, delay: float) -> None:
        now = time.monotonic()
        # A write far overdue was scheduled on an event loop that is gone (tests).
        if self._write_at and now < self._write_at + 10:
            return
        self._write_at = now + delay
        asyncio.get_running_loop().call_later(delay, self._write_closed)

    def _write_closed(self) -> None:
        """Write the counts of the minutes that are over (on the event loop)."""
        self._write_at = 0.0
        current = int(time.time() // 60)
        with self._lock:
            closed = {k: n for k, n in self._counts.items() if k[0] < current}
            for k in closed:
                del self._counts[k]
            waiting = bool(self._counts)
        if closed:
            task = asyncio.get_running_loop().create_task(self._write(closed))
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)
        if waiting:
            self._write_later(60 - time.time() % 60 + WRITE_DELAY)

    async def _write(self, counts: Counts) -> None:
        try:
            await run_db(_add, counts)
        except Exception as error:
            log.warning("could not write %d refusal counts (%s); retrying", len(counts), error)
            self._put_back(counts)
            self._write_later(RETRY_SECONDS)

    def write_all(self) -> None:
        """Write every count now, this minute's too (a worker stopping, a test)."""
        with self._lock:
            counts, self._counts = self._counts, {}
        if not counts:
            return
        try:
            _add(counts)
        except Exception:
            log.exception("could not write %d refusal counts; they are lost", len(counts))

    def forget(self) -> None:
        """Start afresh, the counts not written dropped (tests)."""
        with self._lock:
            self._minute, self._recorded, self._seen, self._counts = -1, 0, {}, {}

    def _put_back(self, counts: Counts) -> None:
        with self._lock:
            for k, n in counts.items():
                # Folded, so that a database down for hours holds one count a minute.
                minute = (k[0], OTHERS)
                self._counts[minute] = self._counts.get(minute, 0) + n


def _add(counts: Counts) -> None:
    from usage.refusals import refused_tally_add

    refused_tally_add(
        counts=[
            (datetime.fromtimestamp(minute * 60, tz=UTC), client, n)
            for (minute, client), n in counts.items()
        ]
    )


refusals = Refusals()
