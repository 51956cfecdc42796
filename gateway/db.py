"""Running a database read from the event loop.

The /v1 path bypasses Django's request cycle, which is what normally closes
connections at the end of a request; here each call gives its connection back
(to psycopg's pool in production) as soon as it is done, so executor threads
never sit on one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connection

P = ParamSpec("P")
T = TypeVar("T")


def _closing(fn: Callable[P, T]) -> Callable[P, T]:
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    return run


async def run_db(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return await sync_to_async(_closing(fn), thread_sensitive=False)(*args, **kwargs)
