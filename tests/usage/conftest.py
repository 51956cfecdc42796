from __future__ import annotations

from collections.abc import Iterator

import pytest

from usage.recorder import UsageEntry, UsageRecorder


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
