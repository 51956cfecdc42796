"""The request log as CSV, streamed: one keyset chunk of records at a time."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from accounts.models import Account
from keys.models import ApiKey
from usage.log import Filters, log_chunks

FIELDS = (
    "created_at",
    "request_id",
    "upstream_request_id",
    "client_request_id",
    "api_key_id",
    "endpoint",
    "model",
    "provider",
    "upstream_model",
    "stream",
    "status",
    "error_type",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "estimated",
    "estimate_reason",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
)


def export_filename(account: Account, now: datetime) -> str:
    local = now.astimezone(zoneinfo.ZoneInfo(account.timezone))
    return f"purebridge-requests-{local:%Y%m%d-%H%M%S}.csv"


def export_header(account: Account) -> list[str]:
    """Times are in the account's time zone, named in the header."""
    return [f"time ({account.timezone})", *FIELDS[1:4], "key", *FIELDS[4:]]


def export_rows(*, account: Account, filters: Filters, chunk: int = 1000) -> Iterator[list]:
    """Every record the filters find, newest first, read `chunk` at a time.
    The key is named as it is now (its id is there too); a deleted key's name
    is empty."""
    zone = zoneinfo.ZoneInfo(account.timezone)
    names = dict(ApiKey.objects.filter(account=account).values_list("id", "name"))
    for rows in log_chunks(account=account, filters=filters, fields=FIELDS, size=chunk):
        for row in rows:
            yield _cells(row, zone, names)


def _cells(row: tuple, zone: zoneinfo.ZoneInfo, names: dict[int, str]) -> list[object]:
    created_at, *ids, key_id = row[:5]
    local = created_at.astimezone(zone)
    cells = [f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d}", *ids]
    cells += [names.get(key_id, ""), key_id, *(_plain(value) for value in row[5:])]
    return cells


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return value
