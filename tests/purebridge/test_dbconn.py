"""Every wait for PostgreSQL has a deadline in a web process: the thread's
(a /v1 request's database call) or the process's default. The server cannot
be trusted to end it (a frozen one cancels nothing): the client does, and
closes the connection, which is part-way through an exchange."""

from __future__ import annotations

import time

import pytest

from purebridge import dbconn
from purebridge.dbconn import DeadlineConnection, DeadlineExceeded, deadline
from tests.helpers import database_url_for_tests


@pytest.fixture
def conn(django_db_setup):
    url = database_url_for_tests().replace("postgres://", "postgresql://")
    with DeadlineConnection.connect(url, autocommit=True, connect_timeout=5) as connection:
        yield connection


def test_a_wait_past_the_threads_deadline_is_cut_and_the_connection_closed(conn, no_default):
    started = time.monotonic()

    with deadline(started + 0.3), pytest.raises(DeadlineExceeded):
        conn.execute("SELECT pg_sleep(5)")

    assert time.monotonic() - started < 1.5
    assert conn.closed


def test_the_process_default_applies_where_the_thread_set_none(conn, monkeypatch):
    monkeypatch.setattr(dbconn, "_default_timeout", 0.3)
    started = time.monotonic()

    with pytest.raises(DeadlineExceeded):
        conn.execute("SELECT pg_sleep(5)")

    assert time.monotonic() - started < 1.5


@pytest.fixture
def no_default(monkeypatch):
    """As in migrations and Celery (this process may have served as a web one)."""
    monkeypatch.setattr(dbconn, "_default_timeout", None)


def test_without_a_deadline_a_wait_is_not_limited(conn, no_default):
    assert dbconn.time_left() is None
    assert conn.execute("SELECT pg_sleep(0.5), 1").fetchone() == ("", 1)


def test_an_inner_deadline_never_outlasts_the_outer_one(no_default):
    with deadline(time.monotonic() + 1), deadline(time.monotonic() + 60):
        assert dbconn.time_left() <= 1
    assert dbconn.time_left() is None


@pytest.mark.parametrize(
    ("url_options", "expected"),
    [
        ("", "-c statement_timeout=2500"),
        ("-c search_path=pb", "-c search_path=pb -c statement_timeout=2500"),
    ],
)
def test_a_web_process_gets_statement_timeout_and_a_default_deadline_a_second_later(
    settings, monkeypatch, url_options, expected
):
    """Set by the ASGI entry point; migrations and Celery never call it."""
    from purebridge.db import configure_web_process

    options = {k: v for k, v in settings.DATABASES["default"]["OPTIONS"].items() if k != "options"}
    if url_options:
        options["options"] = url_options
    monkeypatch.setitem(settings.DATABASES["default"], "OPTIONS", options)
    settings.DATABASE_STATEMENT_TIMEOUT = 2.5
    settings.EMBEDDED = False
    monkeypatch.setattr(dbconn, "_default_timeout", None)

    configure_web_process()

    assert options["options"] == expected
    assert dbconn._default_timeout == 3.5


def test_statement_timeout_0_sets_neither(settings, monkeypatch):
    from purebridge.db import configure_web_process

    settings.DATABASE_STATEMENT_TIMEOUT = 0
    monkeypatch.setattr(dbconn, "_default_timeout", None)

    configure_web_process()

    assert dbconn._default_timeout is None
