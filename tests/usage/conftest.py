from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest

from tests.web import (  # noqa: F401  (fixtures)
    _fast_password_hashing,
    anonymous_client,
)
from usage.models import UsageRecord
from usage.recorder import UsageEntry, UsageRecorder

_ids = itertools.count(1)


class KeepingRecorder(UsageRecorder):
    """A usage writer of one test's own, which remembers what it was handed."""

    def __init__(self) -> None:
        super().__init__(flush_seconds=0.01)
        self.entries: list[UsageEntry] = []

    def record(self, entry: UsageEntry) -> None:
        self.entries.append(entry)
        super().record(entry)


@pytest.fixture
def own_recorder(monkeypatch, transactional_db) -> Iterator[KeepingRecorder]:
    """Replace the process's usage writer for one test, for records the database
    may refuse: a writer stuck on one must not hold up every later test."""
    recorder = KeepingRecorder()
    monkeypatch.setattr("usage.recorder._recorder", recorder)
    yield recorder
    # Make every record acceptable, so a writer that retries a refused batch
    # forever can finish it and leave the database alone.
    for entry in recorder.entries:
        entry.error_type = entry.error_type[:64]
    recorder.flush(60)


@pytest.fixture
def record(transactional_db):
    """Write one usage record as the writer would."""

    def write(key, *, at: datetime, model: str = "m", status: int = 200, **fields) -> UsageRecord:
        fields.setdefault("cost_usd", Decimal("0"))
        return UsageRecord.objects.create(
            created_at=at,
            request_id=f"pb-test-{next(_ids)}",
            endpoint="chat.completions",
            status=status,
            account_id=key.account_id if key else None,
            api_key=key,
            model=model,
            **fields,
        )

    return write
