"""Reservations become real costs when the usage record is written, or are
released when the upstream charged nothing."""

from __future__ import annotations

from decimal import Decimal

from gateway.lua import sums_key
from tests.helpers import post_chat
from tests.limits.support import FLAT_COST, PROMPT, chat, micros, spend_counter


def test_a_request_the_upstream_failed_releases_its_reservation(
    http, make_key, make_model, models, usage_records, redis_client
):
    make_model("broken", "fake?status=500")
    key, secret = make_key(daily_budget_usd=Decimal("10"))

    response = post_chat(http, secret, chat("broken", max_tokens=5))

    assert response.status_code == 502
    [record] = usage_records()
    assert record.cost_usd == 0
    assert spend_counter(redis_client, key, "d") == 0


def test_a_streamed_answer_settles_to_the_usage_the_upstream_reported(
    http, make_key, models, usage_records, redis_client
):
    key, secret = make_key(daily_budget_usd=Decimal("10"))

    response = post_chat(http, secret, chat("big-prompt", max_tokens=5, stream=True))

    assert response.status_code == 200
    [record] = usage_records()
    assert (record.prompt_tokens, record.completion_tokens) == (500, 3)
    assert spend_counter(redis_client, key, "d") == micros(500, 3) > micros(PROMPT, 5)


def test_a_refused_request_leaves_the_counter_as_it_was(
    http, make_key, models, usage_records, redis_client
):
    """$0.06 a day: the first request (reserving $0.058) fits, the second does not."""
    key, secret = make_key(daily_budget_usd=Decimal("0.06"))
    post_chat(http, secret, chat("flat", max_tokens=5))
    usage_records()

    refused = post_chat(http, secret, chat("flat", max_tokens=5))

    assert refused.status_code == 429
    assert [r.cost_usd for r in usage_records()] == [Decimal(FLAT_COST) / 1_000_000, 0]
    assert spend_counter(redis_client, key, "d") == FLAT_COST


def test_settling_corrects_the_window_to_the_tokens_used(
    http, make_key, models, usage_records, redis_client
):
    """One request settles up (the upstream reports a 500-token prompt), one
    down (3 of 5 output tokens): the window still counts two requests, and
    its tokens are what they used, which the third request's headers show."""
    key, secret = make_key(rpm_limit=100, tpm_limit=100_000)
    post_chat(http, secret, chat("big-prompt", max_tokens=5))
    post_chat(http, secret, chat("flat", max_tokens=5))
    usage_records()

    used = (500 + 3) + (PROMPT + 3)
    assert redis_client.hgetall(sums_key(key.account_id, key.id)) == {
        b"r": b"2",
        b"t": str(used).encode(),
    }
    third = post_chat(http, secret, chat("flat", max_tokens=5))
    assert third.headers["x-ratelimit-remaining-requests"] == str(100 - 3)
    assert third.headers["x-ratelimit-remaining-tokens"] == str(100_000 - used - (PROMPT + 5))
