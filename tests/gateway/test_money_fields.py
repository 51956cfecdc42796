"""The fields that decide what a request may cost are checked before it is
admitted or sent: output caps, `n`, the messages the prompt count reads, and
the credentials (gateway/validate.py)."""

from __future__ import annotations

import pytest

from tests.gateway.test_errors import assert_openai_error
from tests.helpers import USER_HI, chat_body, post_chat

BAD_CHAT = [
    pytest.param({"max_tokens": 0}, "max_tokens", id="max_tokens-zero"),
    pytest.param({"max_tokens": -100000}, "max_tokens", id="max_tokens-negative"),
    pytest.param({"max_tokens": 1.5}, "max_tokens", id="max_tokens-fraction"),
    pytest.param({"max_tokens": "10"}, "max_tokens", id="max_tokens-string"),
    pytest.param({"max_tokens": True}, "max_tokens", id="max_tokens-boolean"),
    pytest.param({"max_completion_tokens": 0}, "max_completion_tokens", id="mct-zero"),
    pytest.param({"max_tokens": 5000}, "max_tokens", id="max_tokens-above-model"),
    pytest.param({"n": 0}, "n", id="n-zero"),
    pytest.param({"n": 1000}, "n", id="n-above-maximum"),
    pytest.param({"n": "2"}, "n", id="n-string"),
    pytest.param(
        {"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role", id="role-wizard"
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": 42}]}, "messages[0].content", id="content-number"
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": ["hi"]}]},
        "messages[0].content",
        id="content-parts-not-objects",
    ),
    pytest.param(
        {"messages": [{"role": "assistant", "content": None, "tool_calls": "x"}]},
        "messages[0].tool_calls",
        id="tool-calls-string",
    ),
]


@pytest.fixture
def capped_model(make_model):
    from gateway.models import CatalogModel

    make_model("test-model")
    CatalogModel.objects.update(max_output_tokens=4096)


@pytest.mark.parametrize(("fields", "param"), BAD_CHAT)
def test_chat_fields_that_decide_money_are_refused_before_the_upstream(
    http, api_key, capped_model, fake_upstream, fields, param
):
    response = post_chat(http, api_key, chat_body(**fields))

    error = assert_openai_error(response, 400, "invalid_request_error")
    assert error["param"] == param
    assert fake_upstream.requests == []


BAD_RESPONSES = [
    pytest.param({"max_output_tokens": 0}, "max_output_tokens", id="max_output_tokens-zero"),
    pytest.param({"max_output_tokens": 5000}, "max_output_tokens", id="above-model"),
    pytest.param({"input": 42}, "input", id="input-number"),
    pytest.param({"input": [{"role": "wizard", "content": "hi"}]}, "input[0].role", id="role"),
    pytest.param(
        {"input": [{"role": "user", "content": 42}]}, "input[0].content", id="content-number"
    ),
    pytest.param({"input": ["hi"]}, "input[0]", id="item-string"),
    pytest.param({"input": [{"content": "hi"}]}, "input[0]", id="item-without-type"),
    pytest.param({"instructions": 42}, "instructions", id="instructions-number"),
]


@pytest.mark.parametrize(("fields", "param"), BAD_RESPONSES)
def test_responses_fields_that_decide_money_are_refused_before_the_upstream(
    http, api_key, capped_model, fake_upstream, fields, param
):
    body = {"model": "test-model", "input": "hi", **fields}
    response = http.post("/v1/responses", json=body, headers={"Authorization": f"Bearer {api_key}"})

    error = assert_openai_error(response, 400, "invalid_request_error")
    assert error["param"] == param
    assert fake_upstream.requests == []


def test_valid_caps_n_and_content_parts_are_forwarded(http, api_key, capped_model, fake_upstream):
    messages = [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "user", "content": "again"},
    ]
    body = chat_body(messages=messages, max_tokens=4096, max_completion_tokens=None, n=2)

    response = post_chat(http, api_key, body)

    assert response.status_code == 200, response.text
    assert fake_upstream.requests[-1]["body"]["n"] == 2


def test_n_is_reserved_against_a_budget(http, make_key, make_model):
    make_model("test-model", input="0", output="10")
    _, secret = make_key(daily_budget_usd="0.0005")

    many = post_chat(http, secret, chat_body(max_tokens=10, n=1000 // 8))
    one = post_chat(http, secret, chat_body(max_tokens=10))

    error = assert_openai_error(many, 429, "insufficient_quota", "insufficient_quota")
    assert "n=125" in error["message"]
    assert one.status_code == 200


@pytest.mark.parametrize("valid_first", [True, False], ids=["valid-first", "valid-last"])
def test_two_authorization_headers_are_refused_whichever_is_valid(
    http, api_key, make_model, fake_upstream, valid_first
):
    make_model("test-model")
    credentials = [f"Bearer {api_key}", "Bearer sk-pb-" + "x" * 48]
    if not valid_first:
        credentials.reverse()
    headers = [("Authorization", value) for value in credentials]
    headers.append(("Content-Type", "application/json"))

    response = http.post(
        "/v1/chat/completions",
        content=b'{"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}',
        headers=headers,
    )

    error = assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")
    assert "More than one Authorization header" in error["message"]
    assert fake_upstream.requests == []


def test_one_authorization_header_still_works(http, api_key, make_model):
    make_model("test-model")

    assert post_chat(http, api_key, {"model": "test-model", "messages": USER_HI}).status_code == 200
