"""Usage records made directly, for the request log's tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from usage.models import UsageRecord

_ids = itertools.count()
T0 = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


def record(account, key=None, *, at: datetime = T0, **fields) -> UsageRecord:
    """One record of `account` (and `key`), saved."""
    return UsageRecord.objects.create(**record_fields(account, key, at=at, **fields))


def record_fields(account, key=None, *, at: datetime = T0, **fields) -> dict:
    n = next(_ids)
    values = {
        "created_at": at,
        "account": account,
        "api_key": key,
        "endpoint": "chat.completions",
        "model": "gpt-test",
        "provider": "fake",
        "upstream_model": "fake-1",
        "status": 200,
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "cost_usd": Decimal("0.003250"),
        "latency_ms": 420,
        "request_id": f"pb-test{n:08d}",
        "upstream_request_id": f"req_up{n}",
        "client_request_id": f"client-{n}",
        "attempts": [
            {"provider": "fake", "upstream_model": "fake-1", "status": 200, "error": "", "ms": 400}
        ],
    }
    return values | fields


def many(
    account, key=None, count: int = 10, *, start: datetime = T0, step=timedelta(seconds=1), **fields
):
    """`count` records `step` apart going back from `start`, written in one go."""
    rows = [
        UsageRecord(**record_fields(account, key, at=start - step * i, **fields))
        for i in range(count)
    ]
    return UsageRecord.objects.bulk_create(rows, batch_size=5000)
