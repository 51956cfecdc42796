"""The console when PostgreSQL or Redis cannot answer: a 503 page in the
console's style with Retry-After, never the 500 page; and for a second after
a failure the page at once, without trying the database again."""

from __future__ import annotations

import pytest
from django.db import OperationalError, ProgrammingError
from django.test import Client
from redis.exceptions import TimeoutError as RedisTimeoutError

from purebridge import db


@pytest.fixture(autouse=True)
def _database_up():
    db.mark_up()
    yield
    db.mark_up()


@pytest.fixture
def page_client(transactional_db) -> Client:
    """A client that gets the error page a browser would, not the exception."""
    return Client(raise_request_exception=False)


def failing_docs(monkeypatch, error: Exception) -> list[int]:
    """/docs/ raises `error`; the list counts the times it was called."""
    calls: list[int] = []

    def docs_snippets(**kwargs):
        calls.append(1)
        raise error

    monkeypatch.setattr("console.views.docs_snippets", docs_snippets)
    return calls


def test_an_unreachable_database_is_a_503_page_with_retry_after(page_client, monkeypatch):
    failing_docs(monkeypatch, OperationalError("connection refused"))

    response = page_client.get("/docs/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "cannot reach its database" in response.content.decode()
    assert 'class="card auth-card"' in response.content.decode()


def test_for_a_second_after_a_failure_the_page_comes_without_trying_again(page_client, monkeypatch):
    calls = failing_docs(monkeypatch, OperationalError("connection refused"))
    page_client.get("/docs/")

    response = page_client.get("/docs/")

    assert response.status_code == 503
    assert len(calls) == 1


def test_the_request_that_finds_the_database_back_opens_the_way_for_the_others(
    page_client, monkeypatch
):
    failing_docs(monkeypatch, OperationalError("connection refused"))
    page_client.get("/docs/")
    monkeypatch.undo()
    monkeypatch.setattr(db, "RETRY_SECONDS", 0.0)
    db.mark_down()  # its retry time is now

    assert page_client.get("/docs/").status_code == 200
    assert not db.taken_for_down()


def test_redis_that_does_not_answer_is_a_503_page_too(page_client, monkeypatch):
    failing_docs(monkeypatch, RedisTimeoutError("Timeout reading from socket"))

    response = page_client.get("/docs/")

    assert response.status_code == 503
    assert "Redis" in response.content.decode()
    assert not db.taken_for_down()


def test_any_other_error_is_still_the_500_page(page_client, monkeypatch):
    failing_docs(monkeypatch, ProgrammingError("column does not exist"))

    response = page_client.get("/docs/")

    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
    assert not db.taken_for_down()


async def test_the_middleware_answers_on_the_event_loop_without_a_thread(monkeypatch):
    """Both sync- and async-capable: under ASGI it adds no thread hop."""
    from django.test import AsyncRequestFactory

    from console.unavailable import database_unavailable

    async def view(request):
        raise AssertionError("the database is taken for down: no view runs")

    middleware = database_unavailable(view)
    db.mark_down()

    response = await middleware(AsyncRequestFactory().get("/docs/"))

    assert response.status_code == 503
