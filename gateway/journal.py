"""The in-flight journal: a trace in Redis of every request sent upstream, so
that a web worker killed mid-request (the OOM killer, a deploy's SIGKILL)
still leaves its requests recorded and their reservations released.

- Before a request's first upstream attempt, its trace (what its usage record
  needs, and its reservation) goes into the worker's hash
  `pb:journal:<worker>` — written to Redis's socket before the upstream
  request is, and confirmed before the upstream's first byte is relayed.
- Once its usage record is written and settled, the usage writer drops it.
- A live worker keeps `pb:alive:<worker>` set (PUREBRIDGE_JOURNAL_TTL seconds,
  refreshed three times as often). The `recover-journals` beat task takes the
  journal of every worker whose key has expired and writes a record for each
  trace that has none — estimated from what was sent (the prompt), marked
  `usage_missing:worker_lost` — through the usage writer, whose settlement
  releases its reservation. So within PUREBRIDGE_JOURNAL_TTL plus the task's
  period of a worker's death, every request it had sent upstream has exactly
  one record and the counters equal the records.

Without Redis (the embedded default: one process, which takes the whole
server with it) there is no journal. If Redis cannot be reached the request
goes on untraced (logged): a killed worker's request would then be lost, as
before the journal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from decimal import Decimal

import orjson
from django.conf import settings
from redis.exceptions import ResponseError

from gateway import leases, limiter_redis
from gateway.limiter import Reservation
from gateway.worker import worker_id
from usage.pricing import cost_usd
from usage.recorder import WORKER_LOST, UsageEntry

log = logging.getLogger(__name__)
JOURNAL = "pb:journal:"
ALIVE = "pb:alive:"
RECOVERING = "pb:journal-recovering:"
LOST_STATUS = 502

# Request ids this process traced and has not yet dropped (the writer thread
# drops them; set add and discard are atomic under the GIL).
_traced: set[str] = set()


def enabled() -> bool:
    return bool(settings.REDIS_URL)


def note(usage) -> asyncio.Future | None:
    """Trace a request about to be sent upstream; its write is under way when
    this returns. None when there is no journal."""
    if not enabled() or usage.key is None or usage.model is None:
        return None
    if not limiter_redis.usable():
        return None  # Redis failed within the second: no request waits on it
    from purebridge.redis import pipe

    trace = orjson.dumps(_trace(usage))
    try:
        written = pipe().submit("HSET", JOURNAL + worker_id(), usage.req.request_id, trace)
    except Exception:
        log.warning("could not journal request %s", usage.req.request_id, exc_info=True)
        return None
    _traced.add(usage.req.request_id)
    written.add_done_callback(_logged)
    return written


async def confirmed(written: asyncio.Future | None) -> None:
    """Wait for a trace's write (by now long done: it went out before the
    upstream request); a failure was logged and does not fail the request."""
    if written is not None and not written.done():
        await asyncio.wait([written], timeout=settings.REDIS_TIMEOUT)


def _logged(written: asyncio.Future) -> None:
    if not written.cancelled() and written.exception() is not None:
        log.warning("a journal write failed: %s", written.exception())
        limiter_redis.mark_down()


def _trace(usage) -> dict:
    model, key, route = usage.model, usage.key, usage.route
    prompt_cost = cost_usd(
        input_per_mtok=model.prices.input,
        cached_input_per_mtok=model.prices.cached_input,
        output_per_mtok=model.prices.output,
        prompt_tokens=usage.prompt_estimate,
        cached_tokens=0,
        completion_tokens=0,
    )
    # orjson writes the datetime and the reservation (a dataclass) itself,
    # many times faster than isoformat() and dataclasses.asdict().
    return {
        "created_at": usage.req.received_at,
        "endpoint": usage.endpoint,
        "account_id": key.account_id,
        "api_key_id": key.id,
        "model": model.public_id,
        "provider": route.provider.name if route else "",
        "upstream_model": route.upstream_model if route else "",
        "stream": usage.stream,
        "prompt_tokens": usage.prompt_estimate,
        "cost_usd": str(prompt_cost),
        "client_request_id": usage.client_request_id,
        "reservation": usage.reservation,
    }


def lost_entry(request_id: str, raw: bytes) -> UsageEntry:
    """The usage record of a traced request whose worker died: the prompt it
    sent, estimated; what it received is not known."""
    trace = orjson.loads(raw)
    reservation = trace["reservation"]
    return UsageEntry(
        created_at=datetime.fromisoformat(trace["created_at"]),
        request_id=request_id,
        endpoint=trace["endpoint"],
        status=LOST_STATUS,
        account_id=trace["account_id"],
        api_key_id=trace["api_key_id"],
        model=trace["model"],
        provider=trace["provider"],
        upstream_model=trace["upstream_model"],
        stream=trace["stream"],
        prompt_tokens=trace["prompt_tokens"],
        estimated=True,
        estimate_reason=WORKER_LOST,
        cost_usd=Decimal(trace["cost_usd"]),
        error_type="worker_lost",
        client_request_id=trace["client_request_id"],
        reservation=(
            # A trace written before reservations named their account has
            # the record's.
            Reservation(
                **{
                    "account_id": trace["account_id"],
                    **reservation,
                    "windows": tuple(reservation["windows"]),
                }
            )
            if reservation
            else None
        ),
    )


def drop(entries) -> None:
    """The records of these entries are written and settled: their traces go
    (called by the usage writer thread)."""
    done = [e.request_id for e in entries if e.request_id in _traced]
    if not done:
        return
    from purebridge.redis import sync_client

    try:
        sync_client().hdel(JOURNAL + worker_id(), *done)
    except Exception:
        # Left behind, a trace is found by the recovery only if this worker
        # dies, and then its record exists already: nothing is written twice.
        log.warning("could not drop %d journal traces", len(done), exc_info=True)
    _traced.difference_update(done)


async def keep_alive(stop: asyncio.Event) -> None:
    """Say this worker is alive until it stops (a task of the worker's loop)."""
    from purebridge.redis import pipe

    ttl = settings.PUREBRIDGE_JOURNAL_TTL
    while not stop.is_set():
        try:
            await pipe().execute("SET", ALIVE + worker_id(), "1", "PX", int(ttl * 1000))
        except Exception:
            log.warning("could not refresh this worker's journal heartbeat", exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=ttl / 3)
        except TimeoutError:
            continue


def retire() -> None:
    """This worker stops: it is no longer alive, so any trace it leaves
    (records not written by the end) is recovered at once."""
    from purebridge.redis import sync_client

    try:
        sync_client().delete(ALIVE + worker_id())
    except Exception:
        log.warning("could not retire this worker's journal heartbeat", exc_info=True)


def recover(*, client=None) -> int:
    """Write the records of dead workers' traced requests and return the
    leases they held (the beat task); returns how many records. Safe to run
    twice at once: each journal is claimed by a rename, and a record that
    exists is never written again."""
    from purebridge.redis import sync_client

    client = client or sync_client()
    claimed = []
    for worker in _dead_workers(client):
        # Its leases go back first: it admits nothing from them any more.
        leases.reclaim_worker(client, worker)
        claim = f"{RECOVERING}{worker}:{int(time.time())}"
        try:
            client.rename(JOURNAL + worker, claim)
        except ResponseError:  # no journal, or another run claimed it first
            continue
        claimed.append(claim)
    recovered = 0
    for name in claimed + _unfinished(client, claimed):
        written = _record_lost(client, name)
        if written is None:
            continue
        client.delete(name)
        recovered += written
    return recovered


def _dead_workers(client) -> set[str]:
    """Workers with a journal or leases in Redis and no sign of life."""
    workers = set()
    for prefix in (JOURNAL, leases.WORKER_LEASES):
        for raw in client.scan_iter(match=prefix + "*", count=1000):
            workers.add(raw.decode().removeprefix(prefix))
    return {w for w in workers if not client.exists(ALIVE + w)}


def _unfinished(client, claimed: list[str]) -> list[str]:
    """Journals a run before this one claimed and did not finish (killed, or
    its records not written in time): older claims than a run can take."""
    stale = time.time() - 2 * 60
    names = []
    for raw in client.scan_iter(match=RECOVERING + "*", count=1000):
        name = raw.decode()
        if name not in claimed and int(name.rsplit(":", 1)[1]) < stale:
            names.append(name)
    return names


def _record_lost(client, name: str) -> int | None:
    """Write a record for each trace in the claimed journal `name` that has
    none; how many, or None if the writer did not finish (tried next run)."""
    from usage.models import UsageRecord
    from usage.recorder import get_recorder

    traces = client.hgetall(name)
    ids = [raw.decode() for raw in traces]
    existing = set(
        UsageRecord.objects.filter(request_id__in=ids).values_list("request_id", flat=True)
    )
    entries = [
        lost_entry(request_id, traces[request_id.encode()])
        for request_id in ids
        if request_id not in existing
    ]
    recorder = get_recorder()
    for entry in entries:
        recorder.record(entry)
    if not recorder.flush(60):
        log.error("journal %s: records not written yet; kept for the next run", name)
        return None
    if entries:
        log.warning("recorded %d requests of a worker that died mid-request", len(entries))
    return len(entries)
