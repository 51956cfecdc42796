"""The request log: one account's usage records, newest first, a page at a time.

Pages are keyset pages on (created_at, id), never OFFSET: a page deep in the
past costs what the first one does, and records written while someone reads
neither repeat nor skip a row. Where a page starts is an opaque cursor,
signed so that a changed one is refused rather than read; it holds a position
only, and every read is scoped to the account, so a cursor from another
account's log would show this account's records from that time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core import signing
from django.db.models import Q, QuerySet

from accounts.models import Account
from keys.models import ApiKey
from usage.models import UsageRecord

PAGE_SIZE = 50
CURSOR_SALT = "usage.log.cursor"
NEWEST_FIRST = ("-created_at", "-id")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
STATUS_CLASSES = {"2xx": (200, 300), "4xx": (400, 500), "5xx": (500, 600)}


@dataclass(frozen=True)
class Filters:
    """What the log is narrowed to; `since` inclusive, `until` exclusive."""

    search: str = ""
    api_key: ApiKey | None = None
    model: str = ""
    status_class: str = ""
    streamed: bool | None = None
    estimated: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Cursor:
    """A page's edge: the records older (or newer) than this one."""

    created_at: datetime
    id: int
    older: bool = True

    def encode(self) -> str:
        micros = (self.created_at - EPOCH) // MICROSECOND  # exact, unlike a float
        return signing.dumps([micros, self.id, int(self.older)], salt=CURSOR_SALT)

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Raises signing.BadSignature for anything this code did not sign."""
        micros, record_id, older = signing.loads(token, salt=CURSOR_SALT)
        return cls(EPOCH + micros * MICROSECOND, int(record_id), bool(older))

    @classmethod
    def at(cls, record: UsageRecord, *, older: bool) -> Cursor:
        return cls(record.created_at, record.pk, older)


@dataclass(frozen=True)
class Page:
    records: list[UsageRecord]
    newer: Cursor | None
    older: Cursor | None


def log_records(*, account: Account, filters: Filters) -> QuerySet[UsageRecord]:
    """The account's records that pass the filters, unordered."""
    records = UsageRecord.objects.filter(account=account)
    if filters.search:
        text = filters.search
        records = records.filter(
            Q(request_id=text) | Q(upstream_request_id=text) | Q(client_request_id=text)
        )
    if filters.api_key is not None:
        records = records.filter(api_key=filters.api_key)
    if filters.model:
        records = records.filter(model=filters.model)
    if filters.status_class:
        low, high = STATUS_CLASSES[filters.status_class]
        records = records.filter(status__gte=low, status__lt=high)
    if filters.streamed is not None:
        records = records.filter(stream=filters.streamed)
    if filters.estimated is not None:
        records = records.filter(estimated=filters.estimated)
    if filters.since is not None:
        records = records.filter(created_at__gte=filters.since)
    if filters.until is not None:
        records = records.filter(created_at__lt=filters.until)
    return records


def _beyond(cursor: Cursor) -> Q:
    """Records past the cursor in its direction. The plain bound on created_at
    is what the index scan starts from; the OR only settles equal times."""
    at, pk = cursor.created_at, cursor.id
    if cursor.older:
        return Q(created_at__lte=at) & (Q(created_at__lt=at) | Q(id__lt=pk))
    return Q(created_at__gte=at) & (Q(created_at__gt=at) | Q(id__gt=pk))


def log_page(
    *, account: Account, filters: Filters, cursor: Cursor | None = None, size: int = PAGE_SIZE
) -> Page:
    """One page of the log, newest first, with the cursors of its neighbours."""
    records = log_records(account=account, filters=filters).select_related("api_key")
    if cursor is not None:
        records = records.filter(_beyond(cursor))
    if cursor is None or cursor.older:
        rows = list(records.order_by(*NEWEST_FIRST)[: size + 1])
        more, rows = len(rows) > size, rows[:size]
        older = Cursor.at(rows[-1], older=True) if more else None
        newer = Cursor.at(rows[0], older=False) if cursor is not None and rows else None
        return Page(rows, newer=newer, older=older)
    rows = list(records.order_by("created_at", "id")[: size + 1])
    more, rows = len(rows) > size, rows[:size][::-1]
    newer = Cursor.at(rows[0], older=False) if more else None
    older = Cursor.at(rows[-1], older=True) if rows else None
    return Page(rows, newer=newer, older=older)


def log_chunks(
    *, account: Account, filters: Filters, fields: tuple[str, ...], size: int = 1000
) -> Iterator[list[tuple[Any, ...]]]:
    """Every record that passes the filters, newest first, as lists of at most
    `size` tuples of `fields`: one keyset query per list, so memory stays that
    of one list however many records there are (one query's iterator would
    have the driver hold its whole result)."""
    records = log_records(account=account, filters=filters).order_by(*NEWEST_FIRST)
    cursor: Cursor | None = None
    while True:
        page = records if cursor is None else records.filter(_beyond(cursor))
        rows = list(page.values_list(*fields, "created_at", "id")[:size])
        if rows:
            yield [row[:-2] for row in rows]
        if len(rows) < size:
            return
        cursor = Cursor(rows[-1][-2], rows[-1][-1])
