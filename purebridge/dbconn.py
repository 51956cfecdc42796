"""PostgreSQL connections whose every wait for the server has a deadline.

`statement_timeout` is PostgreSQL's own: a server that is frozen (SIGSTOPped,
swapping, a VM paused) or a network that drops packets cancels nothing, and a
psycopg connection then waits on its socket for ever. Only the client can
stop waiting. Every wait of a DeadlineConnection (a statement, a COPY, a
commit or rollback, the pool's own checks) ends at the calling thread's
deadline if it has one (`deadline()`: a /v1 request's database call), else
after the process's default (set in web processes only: purebridge/db.py).
Past it the connection is closed, since it is part-way through an exchange
with the server, and the wait raises DeadlineExceeded, an OperationalError
that Django passes on as its own.

This module imports only psycopg: settings.py names the class.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import errors

_local = threading.local()
# Seconds any wait may take in this process when its thread set no deadline;
# None: no limit (migrations, Celery).
_default_timeout: float | None = None


class DeadlineExceeded(psycopg.OperationalError):
    """PostgreSQL did not answer by the deadline; the connection was closed."""


def set_default_timeout(seconds: float | None) -> None:
    global _default_timeout
    _default_timeout = seconds


def time_left() -> float | None:
    """Seconds this thread may still wait for the server, or None: no limit."""
    at = getattr(_local, "deadline", None)
    if at is not None:
        return max(at - time.monotonic(), 0.001)
    return _default_timeout


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Every wait for the server in this thread ends by `at` (time.monotonic())."""
    outer = getattr(_local, "deadline", None)
    _local.deadline = at if outer is None else min(at, outer)
    try:
        yield
    finally:
        _local.deadline = outer


class DeadlineConnection(psycopg.Connection):
    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        limit = time_left()
        if limit is None or (timeout is not None and timeout <= limit):
            # No deadline, or the caller's own is the nearer (LISTEN's notifies()).
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, limit)
        except errors._WaitTimeout:
            # Part-way through an exchange: the connection cannot be used again
            # (the pool discards it when it is returned).
            self.close()
            raise DeadlineExceeded(
                f"PostgreSQL did not answer within {limit:.1f}s; connection closed"
            ) from None
