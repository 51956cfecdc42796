"""run_db, the hot path's way to the database: a deadline on every call, a
503 for a database that cannot answer (never a 500 or a hang), and for a
second after a failure that 503 at once."""

from __future__ import annotations

import asyncio
import time

import pytest
from django.db import OperationalError, ProgrammingError

from gateway.db import run_db
from gateway.errors import DatabaseUnavailable
from purebridge import db


@pytest.fixture(autouse=True)
def _database_up():
    db.mark_up()
    yield
    db.mark_up()


def refused() -> None:
    raise OperationalError("connection refused")


async def test_a_database_that_cannot_answer_is_a_503_with_retry_after():
    with pytest.raises(DatabaseUnavailable) as error:
        await run_db(refused)

    assert error.value.status == 503
    assert error.value.code == "service_unavailable"
    assert error.value.headers["retry-after"] == "5"


async def test_for_a_second_after_a_failure_calls_fail_at_once_without_trying(monkeypatch):
    calls = []
    with pytest.raises(DatabaseUnavailable):
        await run_db(refused)

    with pytest.raises(DatabaseUnavailable):
        await run_db(calls.append, 1)
    assert calls == []

    monkeypatch.setattr(db._Reachability, "retry_at", 0.0)  # a second later
    await run_db(calls.append, 2)
    assert calls == [2]
    assert not db.taken_for_down()


async def test_a_call_past_its_deadline_is_a_503_by_the_deadline(settings):
    settings.PUREBRIDGE_DB_TIMEOUT = 0.2
    started = time.monotonic()

    with pytest.raises(DatabaseUnavailable):
        await run_db(time.sleep, 2)

    assert time.monotonic() - started < 1


async def test_a_statement_that_is_wrong_is_not_an_outage():
    def wrong() -> None:
        raise ProgrammingError("column does not exist")

    with pytest.raises(ProgrammingError):
        await run_db(wrong)
    assert not db.taken_for_down()


async def test_past_the_calls_that_may_wait_for_a_connection_a_call_gets_503_at_once(settings):
    settings.DATABASE_POOL_MAX_WAITING = 1
    busy = [
        asyncio.ensure_future(run_db(time.sleep, 0.3))
        for _ in range(settings.DATABASE_POOL_MAX + 1)
    ]
    await asyncio.sleep(0)
    calls: list[int] = []

    with pytest.raises(DatabaseUnavailable, match="busy"):
        await run_db(calls.append, 1)

    await asyncio.gather(*busy)
    assert calls == []
    assert not db.taken_for_down()  # busy is not down
