"""Running a database read from the event loop.

The /v1 path bypasses Django's request cycle, which is what normally closes
connections at the end of a request; here each call gives its connection back
(to psycopg's pool in production) as soon as it is done, so database threads
never sit on one.

Each call has a deadline, PUREBRIDGE_DB_TIMEOUT: it runs in one of this
process's database threads (as many as the pool has connections), and every
wait for PostgreSQL there ends by it (purebridge/dbconn.py). A connection the
pool kept may have broken while idle (a restart ends them all; the pool finds
out on its next use): the call is then tried once more, on a connection that
answers. A database that cannot answer (unreachable, frozen, past the
deadline, no connection to spare, too many calls waiting already) is
DatabaseUnavailable, a 503 with Retry-After: never a 500, never a hang.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from gateway.errors import DatabaseUnavailable
from purebridge import db, dbconn

P = ParamSpec("P")
T = TypeVar("T")


class _Calls:
    threads: ThreadPoolExecutor | None = None
    waiting = 0  # calls running or queued for a thread


def _threads() -> ThreadPoolExecutor:
    # Made in the process that runs the calls (after gunicorn's fork).
    if _Calls.threads is None:
        _Calls.threads = ThreadPoolExecutor(settings.DATABASE_POOL_MAX, thread_name_prefix="db")
    return _Calls.threads


def database_down() -> bool:
    """The database is taken for down: what is cached is served as last read,
    without trying it (and waiting up to a deadline, holding up the others
    that wait for the same entry). What finds it back: the usage writer's next
    try, /health's checks, and requests for what is not cached."""
    return db.taken_for_down()


async def run_db(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """fn(*args, **kwargs) in a database thread, by PUREBRIDGE_DB_TIMEOUT."""
    return await _run(fn, args, kwargs, settings.PUREBRIDGE_DB_TIMEOUT, probe=False)


async def probe_db(fn: Callable[[], T], seconds: float) -> T:
    """run_db() for /health: its own deadline, and tried even while the
    database is taken for down (a probe is how it is found back)."""
    return await _run(fn, (), {}, seconds, probe=True)


async def _run(fn: Callable[..., T], args: Any, kwargs: Any, seconds: float, probe: bool) -> T:
    if not probe and not db.usable():
        raise DatabaseUnavailable()
    if _Calls.waiting >= settings.DATABASE_POOL_MAX + settings.DATABASE_POOL_MAX_WAITING:
        raise DatabaseUnavailable("PureBridge's database is busy; try again shortly.")
    at = time.monotonic() + seconds
    _Calls.waiting += 1
    try:
        call = asyncio.get_running_loop().run_in_executor(_threads(), _call, fn, args, kwargs, at)
        async with asyncio.timeout(seconds):
            result = await call
    except TimeoutError:
        db.mark_down()
        raise DatabaseUnavailable() from None
    except Exception as error:
        if not db.unavailable(error):
            raise
        if db.unreachable(error):
            db.mark_down(error)
        raise DatabaseUnavailable() from error
    finally:
        _Calls.waiting -= 1
    db.mark_up()
    return result


def _call(fn: Callable[..., T], args: Any, kwargs: Any, at: float) -> T:
    if time.monotonic() >= at:
        raise OperationalError("no database thread was free before the deadline")
    with dbconn.deadline(at):
        try:
            try:
                return fn(*args, **kwargs)
            except (OperationalError, InterfaceError):
                if not _broken() or time.monotonic() >= at:
                    raise
            connection.close()
            _take_live_connection()
            return fn(*args, **kwargs)
        finally:
            connection.close()


def _broken() -> bool:
    """The connection just used was lost by the server's side (not cut at a
    deadline, which closes it on this side)."""
    conn = connection.connection
    return isinstance(conn, psycopg.Connection) and conn.broken


def _take_live_connection() -> None:
    """Take connections from the pool until one answers, each one that does
    not going back to be discarded: after a restart the pool holds nothing
    else until it finds out."""
    from psycopg_pool import ConnectionPool

    for _ in range(settings.DATABASE_POOL_MAX):
        connection.ensure_connection()
        try:
            ConnectionPool.check_connection(connection.connection)
            return
        except psycopg.Error:
            if not _broken():
                raise
            connection.close()
    connection.ensure_connection()
