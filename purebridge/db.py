"""What a web process knows of PostgreSQL's reachability, and its deadlines.

After the database failed to answer (it refused, was cut at a deadline, had
no connection to give), the process takes it for down: the /v1 hot path
(gateway/db.py) answers 503 at once and serves cached keys and catalogue
without refreshing them, the console (console/unavailable.py) shows its 503
page at once. A second later one caller tries again; any success (that
caller's, the usage writer's, a /health check's) ends it, as Redis's does in
gateway/limiter_redis.py.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from django.db import InterfaceError, OperationalError
from psycopg import errors as pg_errors
from psycopg_pool import TooManyRequests

from purebridge import dbconn

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


class _Reachability:
    down = False
    retry_at = 0.0
    lock = threading.Lock()


def taken_for_down() -> bool:
    return _Reachability.down


def usable() -> bool:
    """False for a second after the database failed; then True for one
    caller (which tries it), and False for the others until that one knows."""
    state = _Reachability
    if not state.down:
        return True
    now = time.monotonic()
    with state.lock:
        if now < state.retry_at:
            return False
        state.retry_at = now + RETRY_SECONDS
        return True


def mark_down(error: BaseException | None = None) -> None:
    state = _Reachability
    with state.lock:
        if not state.down:
            log.warning(
                "PostgreSQL unreachable (%s): uncached keys and the console get 503, "
                "usage records wait in the writer",
                error or "no answer in time",
            )
        state.down = True
        state.retry_at = time.monotonic() + RETRY_SECONDS


def mark_up() -> None:
    state = _Reachability
    if state.down:
        with state.lock:
            if state.down:
                log.warning("PostgreSQL reachable again")
            state.down = False


def unavailable(error: BaseException) -> bool:
    """The error says the database cannot answer now (unreachable, too slow,
    no connection to spare), not that it refused this statement."""
    return isinstance(
        error, OperationalError | InterfaceError | psycopg.OperationalError | psycopg.InterfaceError
    )


def unreachable(error: BaseException) -> bool:
    """unavailable(), for a reason that is the database's, not this process's
    or this statement's: the others should not wait on it for a while."""
    cause = error.__cause__ or error  # Django's errors wrap psycopg's
    return unavailable(error) and not isinstance(cause, TooManyRequests | pg_errors.QueryCanceled)


def configure_web_process() -> None:
    """Deadlines for a web process (the ASGI entry point calls this before any
    connection is made): PostgreSQL's statement_timeout, and a limit on every
    wait for the server one second past it. Migrations and Celery keep none."""
    from django.conf import settings

    seconds = settings.DATABASE_STATEMENT_TIMEOUT
    if settings.EMBEDDED or not seconds:
        return
    databases: dict = settings.DATABASES
    options = databases["default"]["OPTIONS"]
    timeout = f"-c statement_timeout={int(seconds * 1000)}"
    options["options"] = f"{options['options']} {timeout}" if options.get("options") else timeout
    dbconn.set_default_timeout(seconds + 1.0)
