"""Conversation state for previous_response_id while Redis is down: reading it
is a 503 to retry (never a 500); keeping it is skipped and logged (the
answer it follows was delivered and charged)."""

from __future__ import annotations

import logging

import pytest

from gateway.errors import ServiceUnavailable
from gateway.responses.store import conversation_get, conversation_put
from tests.limits.support import free_port


@pytest.fixture
def redis_down(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens


async def test_reading_a_conversation_with_redis_down_is_a_503_to_retry(redis_down):
    with pytest.raises(ServiceUnavailable) as refused:
        await conversation_get(account_id=1, response_id="resp_1")

    assert refused.value.status == 503
    assert refused.value.headers["retry-after"] == "5"


async def test_keeping_a_conversation_with_redis_down_is_skipped_and_logged(redis_down, caplog):
    with caplog.at_level(logging.WARNING, logger="gateway.responses.store"):
        await conversation_put(account_id=1, response_id="resp_1", items=[])

    assert "resp_1 not kept" in caplog.text
