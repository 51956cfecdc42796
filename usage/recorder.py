"""Writing usage records off the request path.

The hot path hands a finished record to `record()`: a lock-free queue put that
cannot be cancelled, so a client that disconnects still gets its request
recorded. One background thread per process drains the queue in batches and
marks the keys as used. If the database is unreachable the batch is kept and
retried (every few seconds at most, so records flush soon after it is back);
at shutdown `flush()` writes what is left.

The records waiting are bounded, never dropped: once `backlog_max` wait,
`full()` says so and the gateway refuses new requests with 503 (the requests
in flight still finish and are recorded, so the backlog may pass the bound by
what was in flight).

On PostgreSQL a batch goes in with COPY, from rows made straight from the
entries: `bulk_create` (model instances, field preparation, SQL compilation,
psycopg's list dumpers for the UNNEST insert) took ~15 % of a busy web worker's
samples, on a thread that holds the GIL against the event loop. SQLite keeps
`bulk_create`.

Once a batch is in the database, where a lost budget counter is rebuilt from,
the writer settles its requests' reservations: admission's settle step
(gateway.limits.settle), which the gateway hands it at start with
`settle_with()` (gateway/apps.py), as the usage app does not import the
gateway.
"""

from __future__ import annotations

import functools
import json
import logging
import operator
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    models,
    transaction,
)
from django.utils import timezone
from psycopg import sql
from psycopg.errors import UniqueViolation

from purebridge import db, metrics
from usage.alerts import alerts_check

if TYPE_CHECKING:
    from gateway.limiter import Reservation

log = logging.getLogger(__name__)
MAX_BATCH = 500
# The estimate_reason of a record written for a request whose web worker died
# before it could write one (gateway/journal.py).
WORKER_LOST = "usage_missing:worker_lost"
RETRY_MAX_SECONDS = 2.0  # between tries of a batch while the database is unreachable


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
    estimate_reason: str = ""
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
    def __init__(self, flush_seconds: float, backlog_max: int = 50_000) -> None:
        self._queue: queue.SimpleQueue[UsageEntry] = queue.SimpleQueue()
        self._flush_seconds = flush_seconds
        self._backlog_max = backlog_max
        self._pending = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def record(self, entry: UsageEntry) -> None:
        with self._cond:
            self._pending += 1
            if self._pending == self._backlog_max:
                log.error(
                    "%d usage records wait for the database: new requests get 503 "
                    "until they are written",
                    self._pending,
                )
        self._queue.put(entry)
        if self._thread is None or not self._thread.is_alive():
            self._start()

    def full(self) -> bool:
        """As many records wait as may: take no new request until some are written."""
        return self._pending >= self._backlog_max

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
            # Here, not in record(): the request path pays nothing for it.
            metrics.usage_backlog(self._pending)

    def _write_with_retry(self, batch: list[UsageEntry]) -> None:
        delay = 0.25
        while True:
            try:
                _write(batch)
                db.mark_up()
                return
            except (OperationalError, InterfaceError) as error:
                # The database is unreachable: keep the batch and try again.
                # The web process's other users of it learn it from here too.
                if db.unreachable(error):
                    db.mark_down(error)
                metrics.usage_write_failed("unreachable")
                metrics.usage_backlog(self._pending)
                log.warning(
                    "writing %d usage records failed (%s, %d waiting); retrying in %.1fs",
                    len(batch),
                    str(error).strip() or type(error).__name__,
                    self._pending,
                    delay,
                    exc_info=delay == 0.25,
                )
                close_old_connections()
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
            except DatabaseError as error:
                # The database refuses something in the batch: write the records
                # one by one, and the one it refuses with its values brought
                # within what its columns hold. A completed request is never
                # left unrecorded.
                metrics.usage_write_failed("refused")
                if len(batch) > 1:
                    for entry in batch:
                        self._write_with_retry([entry])
                    return
                entry = batch[0]
                fixed = clamped(entry)
                if fixed is None:
                    log.error(
                        "usage record %s refused by the database and dropped (%s)",
                        entry.request_id,
                        error,
                    )
                    return
                log.error(
                    "usage record %s refused by the database (%s); writing it with %s",
                    entry.request_id,
                    error,
                    fixed.estimate_reason,
                )
                batch = [fixed]


def clamped(entry: UsageEntry) -> UsageEntry | None:
    """The entry with every value its column cannot hold brought within it
    (counts and cost to the column's range, text cut to its length, attempts
    made JSON), marked as an estimate that says which; None when there is
    nothing to change (the database refused it for another reason)."""
    from usage.models import UsageRecord

    changes: dict[str, Any] = {}
    for column in UsageRecord._meta.concrete_fields:
        name = column.attname
        if name not in _FIELDS:
            continue
        value = getattr(entry, name)
        fixed = _within(column, value)
        if fixed is not value and fixed != value:
            changes[name] = fixed
    if not changes:
        return None
    reason = "clamped:" + ",".join(changes)
    return replace(entry, **changes, estimated=True, estimate_reason=reason[:200])


def _within(column: models.Field, value: object) -> object:
    if value is None:
        return value
    if isinstance(column, models.CharField) and isinstance(value, str):
        return value[: column.max_length]
    if isinstance(column, models.DecimalField) and isinstance(value, Decimal):
        if not value.is_finite():
            return Decimal(0)
        places = Decimal(1).scaleb(-column.decimal_places)
        largest = Decimal(10) ** (column.max_digits - column.decimal_places) - places
        return min(max(value.quantize(places, rounding=ROUND_CEILING), -largest), largest)
    if isinstance(column, models.IntegerField) and isinstance(value, int):
        low, high = connection.ops.integer_field_range(column.get_internal_type())
        return min(max(value, low if low is not None else value), high or value)
    if isinstance(column, models.JSONField):
        try:
            json.dumps(value, cls=column.encoder)
        except (TypeError, ValueError):
            return []
    return value


def _write(batch: list[UsageEntry]) -> None:
    try:
        if connection.vendor == "postgresql":
            written = _store_copying(batch)
        else:
            _store(batch, _insert_models, skip_existing=True)
            written = batch
        # Only now that the records are in the database, where a lost counter
        # is rebuilt from, do reservations become real costs.
        _settle(written)
        alerts_check(written)
    finally:
        # Give the connection back (to psycopg's pool in production).
        connection.close()


def _store_copying(batch: list[UsageEntry]) -> list[UsageEntry]:
    """Write the batch; returns the entries whose reservations are this
    batch's to settle."""
    from usage.models import UsageRecord

    try:
        _store(batch, _copy, skip_existing=False)
        return batch
    except IntegrityError as error:
        if not isinstance(error.__cause__, UniqueViolation):
            raise
        # A batch retried after its first write was committed but not
        # acknowledged: COPY has no ON CONFLICT, so this rare batch goes in
        # again through the insert that skips the records already there
        # (request_id is unique) and nothing is counted twice.
        log.warning(
            "some of %d usage records are written already (a retry after a lost "
            "acknowledgement?); writing the others",
            len(batch),
        )
        # A record the journal's recovery wrote (its worker was taken for
        # dead) was settled by it: this late one must not settle again.
        recovered = set(
            UsageRecord.objects.filter(
                request_id__in=[e.request_id for e in batch], estimate_reason=WORKER_LOST
            ).values_list("request_id", flat=True)
        )
        _store(batch, _insert_models, skip_existing=True)
        return [e for e in batch if e.request_id not in recovered]


def _store(
    batch: list[UsageEntry], insert: Callable[[list[UsageEntry]], None], *, skip_existing: bool
) -> None:
    """The records, their keys' last use and what follows them in the books
    (`on_store`) in one transaction: one commit per batch, and a batch whose
    UPDATE fails is retried whole, not found half written. With
    `skip_existing`, records already there (a retry after a lost
    acknowledgement) are neither written nor booked again."""
    from keys.models import ApiKey
    from usage.models import UsageRecord

    with transaction.atomic():
        fresh = batch
        if skip_existing:
            there = set(
                UsageRecord.objects.filter(
                    request_id__in=[e.request_id for e in batch]
                ).values_list("request_id", flat=True)
            )
            fresh = [e for e in batch if e.request_id not in there]
        insert(fresh)
        last_used = {e.api_key_id for e in batch if e.api_key_id is not None and e.status != 401}
        if last_used:
            now = max(entry.created_at for entry in batch)
            ApiKey.objects.filter(id__in=last_used).update(last_used_at=now)
        for step in _on_store:
            step(fresh)


def _insert_models(batch: list[UsageEntry]) -> None:
    from usage.models import UsageRecord

    # ignore_conflicts: a batch retried after a partial failure is not
    # counted twice (request_id is unique).
    UsageRecord.objects.bulk_create([_model(entry) for entry in batch], ignore_conflicts=True)


def _model(entry: UsageEntry):
    from usage.models import UsageRecord

    return UsageRecord(**{name: getattr(entry, name) for name in _FIELDS})


def _copy(batch: list[UsageEntry]) -> None:
    """COPY the batch through psycopg's own connection. Its errors are not
    Django's: they are mapped to them here, so that `_write_with_retry`
    tells an unreachable database from a refused record."""
    statement, row = copy_plan()
    now = timezone.now()
    connection.ensure_connection()
    with (
        connection.wrap_database_errors,
        connection.connection.cursor() as cursor,
        cursor.copy(statement) as copy,
    ):
        for entry in batch:
            copy.write_row(row(entry, now))


Row = Callable[[UsageEntry, datetime], tuple]


@functools.cache
def copy_plan() -> tuple[sql.Composed, Row]:
    """The COPY statement for UsageRecord and the function that makes one
    entry's row for it (checked when the usage app starts)."""
    from usage.models import UsageRecord

    return _copy_plan(UsageRecord._meta.db_table, UsageRecord._meta.concrete_fields)


def _copy_plan(table: str, columns: Iterable[models.Field]) -> tuple[sql.Composed, Row]:
    """Every column of the record, each from the entry attribute of its name,
    except JSON (written as JSON text), auto_now(_add) times (the write
    time) and columns with a database default (db_default: recorded_at, the
    database's clock). Any other column with no source is a configuration
    error, not a column left to its default: that is how a new field would
    be lost without a word."""
    names = set(_FIELDS)
    plain: list[models.Field] = []
    as_json: list[models.JSONField] = []
    write_time: list[models.Field] = []
    for column in columns:
        if column.primary_key and column.db_returning:
            continue  # the database numbers the records
        if column.attname in names:
            if isinstance(column, models.JSONField):
                as_json.append(column)
            else:
                plain.append(column)
        elif getattr(column, "auto_now", False) or getattr(column, "auto_now_add", False):
            write_time.append(column)
        elif column.has_db_default():
            continue
        else:
            raise ImproperlyConfigured(
                f"{table}.{column.column} has no source in UsageEntry: add a "
                f"{column.attname} attribute there"
            )
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table),
        # Concrete fields always have a column (the stubs allow None).
        sql.SQL(", ").join(
            [sql.Identifier(cast(str, c.column)) for c in [*plain, *as_json, *write_time]]
        ),
    )
    plain_values = [operator.attrgetter(c.attname) for c in plain]
    json_values = [(operator.attrgetter(c.attname), c.encoder) for c in as_json]
    times = len(write_time)

    def row(entry: UsageEntry, now: datetime) -> tuple:
        return (
            *[value(entry) for value in plain_values],
            *[json.dumps(value(entry), cls=encoder) for value, encoder in json_values],
            *(now,) * times,
        )

    return statement, row


_FIELDS = tuple(f.name for f in fields(UsageEntry) if f.name != "reservation")
_recorder: UsageRecorder | None = None
_lock = threading.Lock()

Settle = Callable[[list[UsageEntry]], None]


def _not_connected(batch: list[UsageEntry]) -> None:
    reserved = sum(1 for entry in batch if entry.reservation is not None)
    if reserved:
        log.error("usage writer has no settle step: %d reservations left as reserved", reserved)


_settle: Settle = _not_connected
_on_store: list[Settle] = []


def on_store(step: Settle) -> None:
    """Run `step` on each batch's new records inside the transaction that
    writes them (billing debits the accounts' balances there), in every
    process that writes records."""
    if step not in _on_store:
        _on_store.append(step)


def settle_with(step: Settle) -> None:
    """Settle each written batch's reservations with `step` (the gateway's
    gateway.limits.settle, handed over when its app is ready, in every
    process: web workers, Celery, management commands, tests)."""
    global _settle
    _settle = step


def get_recorder() -> UsageRecorder:
    global _recorder
    if _recorder is None:
        with _lock:
            if _recorder is None:
                _recorder = UsageRecorder(
                    settings.PUREBRIDGE_USAGE_FLUSH_SECONDS, settings.PUREBRIDGE_USAGE_BACKLOG_MAX
                )
    return _recorder
