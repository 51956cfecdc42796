"""Writing usage records off the request path.

The hot path hands a finished record to `record()`: a lock-free queue put that
cannot be cancelled, so a client that disconnects still gets its request
recorded. One background thread per process drains the queue in batches
(`bulk_create`) and marks the keys as used. If the database is unreachable the
batch is kept and retried; at shutdown `flush()` writes what is left.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)

from gateway.limits import Reservation, settle
from usage.alerts import alerts_check

log = logging.getLogger(__name__)
MAX_BATCH = 500


@dataclass(slots=True)
class UsageEntry:
    created_at: datetime
    request_id: str
    endpoint: str
    status: int
    account_id: int | None = None
    api_key_id: int | None = None
    model: str = ""
    provider: str = ""
    upstream_model: str = ""
    stream: bool = False
    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False
    cost_usd: Decimal = Decimal(0)
    error_type: str = ""
    latency_ms: int = 0
    ttft_ms: int | None = None
    upstream_request_id: str = ""
    client_request_id: str = ""
    attempts: list[dict] = field(default_factory=list)
    # What admission reserved; settled to the real cost once written. Not stored.
    reservation: Reservation | None = None


class UsageRecorder:
    def __init__(self, flush_seconds: float) -> None:
        self._queue: queue.SimpleQueue[UsageEntry] = queue.SimpleQueue()
        self._flush_seconds = flush_seconds
        self._pending = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def record(self, entry: UsageEntry) -> None:
        with self._cond:
            self._pending += 1
        self._queue.put(entry)
        if self._thread is None or not self._thread.is_alive():
            self._start()

    def flush(self, timeout: float = 30.0) -> bool:
        """Block until every record handed over so far is written."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _start(self) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="usage-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            # Let a batch gather: one INSERT for many requests under load.
            time.sleep(self._flush_seconds)
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write_with_retry(batch)
            with self._cond:
                self._pending -= len(batch)
                self._cond.notify_all()

    def _write_with_retry(self, batch: list[UsageEntry]) -> None:
        delay = 0.5
        while True:
            try:
                _write(batch)
                return
            except (OperationalError, InterfaceError):
                # The database is unreachable: keep the batch and try again.
                log.exception(
                    "writing %d usage records failed; retrying in %.1fs", len(batch), delay
                )
                close_old_connections()
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
            except DatabaseError:
                # The database refuses something in the batch: write the records
                # one by one so that only the one it refuses is lost, loudly.
                if len(batch) == 1:
                    log.error("usage record refused by the database and dropped: %r", batch[0])
                    return
                for entry in batch:
                    self._write_with_retry([entry])
                return


def _write(batch: list[UsageEntry]) -> None:
    try:
        _store(batch)
        # Only now that the records are in the database, where a lost counter
        # is rebuilt from, do reservations become real costs.
        settle(batch)
        alerts_check(batch)
    finally:
        # Give the connection back (to psycopg's pool in production).
        connection.close()


def _store(batch: list[UsageEntry]) -> None:
    """The records and their keys' last use in one transaction: one commit per
    batch, and a batch whose UPDATE fails is retried whole, not found half
    written."""
    from keys.models import ApiKey
    from usage.models import UsageRecord

    with transaction.atomic():
        # ignore_conflicts: a batch retried after a partial failure is not
        # counted twice (request_id is unique).
        UsageRecord.objects.bulk_create([_model(entry) for entry in batch], ignore_conflicts=True)
        last_used = {e.api_key_id for e in batch if e.api_key_id is not None and e.status != 401}
        if last_used:
            now = max(entry.created_at for entry in batch)
            ApiKey.objects.filter(id__in=last_used).update(last_used_at=now)


def _model(entry: UsageEntry):
    from usage.models import UsageRecord

    return UsageRecord(**{name: getattr(entry, name) for name in _FIELDS})


_FIELDS = tuple(f.name for f in fields(UsageEntry) if f.name != "reservation")
_recorder: UsageRecorder | None = None
_lock = threading.Lock()


def get_recorder() -> UsageRecorder:
    global _recorder
    if _recorder is None:
        with _lock:
            if _recorder is None:
                _recorder = UsageRecorder(settings.PUREBRIDGE_USAGE_FLUSH_SECONDS)
    return _recorder
