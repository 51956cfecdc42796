"""The usage writer's backlog while the database is down: bounded, and never
by dropping a record. At the bound new /v1 requests get 503 (and leave no
record: that is what could not be kept); every request served is recorded
once the database is back."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError

from tests.helpers import chat_body, post_chat, wait_for
from usage import recorder
from usage.recorder import UsageRecorder


@pytest.fixture
def database_down(monkeypatch, live):
    """A writer of the test's own, bounded at 3 waiting records, whose
    database is down until the event is set."""
    back = threading.Event()
    write = recorder._write

    def write_when_back(batch):
        if not back.is_set():
            raise OperationalError("connection refused")
        write(batch)

    own = UsageRecorder(flush_seconds=0.01, backlog_max=3)
    monkeypatch.setattr(recorder, "_recorder", own)
    monkeypatch.setattr(recorder, "_write", write_when_back)
    yield back
    back.set()
    assert own.flush(10)


def test_at_the_bound_new_requests_get_503_and_every_request_served_is_recorded(
    http, make_model, api_key, database_down, usage_records
):
    make_model()

    served = [post_chat(http, api_key, chat_body()) for _ in range(3)]
    # A response may reach the client a moment before its record reaches the writer.
    assert wait_for(recorder.get_recorder().full)
    refused = [post_chat(http, api_key, chat_body()) for _ in range(2)]
    database_down.set()
    assert recorder.get_recorder().flush(10)
    after = post_chat(http, api_key, chat_body())

    assert [r.status_code for r in served] == [200] * 3
    for response in refused:
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.headers["retry-after"] == "5"
    assert after.status_code == 200
    # Its record reaches the writer a moment after the answer reaches the client.
    recorded = {r.request_id for r in usage_records()}
    assert recorded == {r.headers["x-purebridge-request-id"] for r in [*served, after]}


def test_below_the_bound_nothing_is_refused(http, make_model, api_key, database_down):
    make_model()

    responses = [post_chat(http, api_key, chat_body()) for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    assert not recorder.get_recorder().full()
