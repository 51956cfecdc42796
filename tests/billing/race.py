"""Many threads at once, each on a PostgreSQL connection of its own."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections


def race(calls: list[Callable[[], Any]]) -> tuple[list[Any], set[int]]:
    """Run every call at once, each in its own thread on its own connection
    (not one from the pool, which would let only a few at a time reach the
    database): all connect first, then all start together. Returns their
    results in order and the server process ids they ran on."""
    settings = copy.deepcopy(connections[DEFAULT_DB_ALIAS].settings_dict)
    settings["OPTIONS"].pop("pool", None)
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    pids: set[int] = set()
    errors: list[BaseException] = []

    def run(n: int, call: Callable[[], Any]) -> None:
        from django.db.backends.postgresql.base import DatabaseWrapper

        own = DatabaseWrapper(copy.deepcopy(settings), DEFAULT_DB_ALIAS)
        connections[DEFAULT_DB_ALIAS] = own
        try:
            own.ensure_connection()
            pids.add(own.connection.info.backend_pid)
            start.wait(timeout=30)
            results[n] = call()
        except BaseException as error:
            errors.append(error)
            start.abort()
        finally:
            own.close()

    threads = [threading.Thread(target=run, args=(n, call)) for n, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return results, pids
