"""PureBridge's own x-ratelimit-* headers, and refusals that look the same
whether the client asked for a stream or not."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.helpers import post_chat
from tests.limits.support import PROMPT, chat

DURATION = re.compile(r"^(\d+ms|\d+s|\d+m\d+s)$")
NAMES = [
    f"x-ratelimit-{what}-{kind}"
    for kind in ("requests", "tokens")
    for what in ("limit", "remaining", "reset")
]


def limits_of(response) -> dict[str, str]:
    return {name: response.headers.get(name) for name in NAMES}


def test_chat_responses_carry_request_and_token_limits_that_count_down(
    http, make_key, models, usage_records
):
    """Each request reserves PROMPT + max_tokens (5) tokens; once it has been
    recorded its real PROMPT + 3 count instead."""
    key, secret = make_key(rpm_limit=10, tpm_limit=1000)
    seen = []
    for stream in (False, False, True, False):
        response = post_chat(http, secret, chat("flat", max_tokens=5, stream=stream))
        assert response.status_code == 200
        seen.append(limits_of(response))
        usage_records()

    reserved, real = PROMPT + 5, PROMPT + 3
    assert [h["x-ratelimit-remaining-requests"] for h in seen] == ["9", "8", "7", "6"]
    assert [h["x-ratelimit-remaining-tokens"] for h in seen] == [
        str(1000 - n * real - reserved) for n in range(4)
    ]
    for headers in seen:
        assert headers["x-ratelimit-limit-requests"] == "10"
        assert headers["x-ratelimit-limit-tokens"] == "1000"
        assert DURATION.match(headers["x-ratelimit-reset-requests"])
        assert DURATION.match(headers["x-ratelimit-reset-tokens"])


def test_a_request_refused_for_rpm_says_none_remain_and_when_they_reset(http, make_key, models):
    key, secret = make_key(rpm_limit=1, tpm_limit=1000)
    post_chat(http, secret, chat("flat", max_tokens=5))

    refused = post_chat(http, secret, chat("flat", max_tokens=5))

    assert refused.status_code == 429
    headers = limits_of(refused)
    assert headers["x-ratelimit-limit-requests"] == "1"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert DURATION.match(headers["x-ratelimit-reset-requests"])
    assert headers["x-ratelimit-limit-tokens"] == "1000"


def test_a_request_refused_for_rpm_still_counts_the_tokens_in_use(
    http, make_key, models, usage_records
):
    key, secret = make_key(rpm_limit=1, tpm_limit=1000)
    post_chat(http, secret, chat("flat", max_tokens=5))
    usage_records()

    refused = post_chat(http, secret, chat("flat", max_tokens=5))

    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-remaining-tokens"] == str(1000 - (PROMPT + 3))


def test_a_key_without_limits_gets_no_ratelimit_headers(http, make_key, models):
    key, secret = make_key()

    response = post_chat(http, secret, chat("flat"))

    assert response.status_code == 200
    assert not any(response.headers.get(name) for name in NAMES)


def test_a_request_larger_than_the_tpm_is_refused_without_a_retry(
    http, make_key, models, fake_upstream
):
    key, secret = make_key(tpm_limit=100)

    refused = post_chat(http, secret, chat("flat", max_tokens=200))

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["x-should-retry"] == "false"
    assert "retry-after" not in refused.headers
    assert fake_upstream.stats["hits"] == 0


def test_a_used_up_tpm_says_when_to_retry(http, make_key, models, usage_records):
    """The first request reserves PROMPT + 5 tokens and settles to PROMPT + 3;
    the second needs PROMPT + 5 more, one token too many."""
    tpm = (PROMPT + 3) + (PROMPT + 5) - 1
    key, secret = make_key(tpm_limit=tpm)
    assert post_chat(http, secret, chat("flat", max_tokens=5)).status_code == 200
    usage_records()

    refused = post_chat(http, secret, chat("flat", max_tokens=5))

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "x-should-retry" not in refused.headers
    assert refused.headers["x-ratelimit-remaining-tokens"] == str(tpm - (PROMPT + 3))


@pytest.mark.parametrize("limit", ["rpm", "budget"])
def test_a_streaming_refusal_is_the_same_429_json_as_a_non_streaming_one(
    http, make_key, models, usage_records, limit
):
    fields = {"rpm_limit": 1} if limit == "rpm" else {"daily_budget_usd": Decimal("0.06")}
    key, secret = make_key(**fields)
    assert post_chat(http, secret, chat("flat", max_tokens=5)).status_code == 200
    usage_records()

    plain = post_chat(http, secret, chat("flat", max_tokens=5))
    streamed = post_chat(http, secret, chat("flat", max_tokens=5, stream=True))

    for response in (plain, streamed):
        assert response.status_code == 429
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()) == {"error"}
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    same = {"retry-after", "x-should-retry", *NAMES}
    assert {h: plain.headers.get(h) is not None for h in same} == {
        h: streamed.headers.get(h) is not None for h in same
    }
    # The seconds to wait may tick between the two.
    assert _no_digits(plain.json()) == _no_digits(streamed.json())
    if limit == "rpm":
        assert plain.json()["error"]["code"] == "rate_limit_exceeded"
        assert "retry-after" in streamed.headers
    else:
        assert plain.json()["error"]["code"] == "insufficient_quota"
        assert streamed.headers["x-should-retry"] == "false"


def _no_digits(body: dict) -> dict:
    error = dict(body["error"])
    error["message"] = re.sub(r"\d+s\b", "Ns", error["message"])
    return {"error": error}
