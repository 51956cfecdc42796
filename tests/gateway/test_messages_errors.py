"""/v1/messages: keys in either header, errors in Anthropic's shape with their
status kept, count_tokens, failover and a stream that breaks."""

from __future__ import annotations

from decimal import Decimal

import anthropic
import pytest

from gateway.tokens import count_text, prompt_overhead
from tests.helpers import post_chat, read_events_then_hang_up, wait_for

HI = [{"role": "user", "content": "hi"}]


def post_message(http, headers: dict, **body):
    body.setdefault("max_tokens", 10)
    body.setdefault("messages", HI)
    return http.post("/v1/messages", headers=headers, json=body)


def assert_anthropic_error(response, status: int, kind: str) -> dict:
    assert response.status_code == status
    body = response.json()
    assert (body["type"], body["error"]["type"]) == ("error", kind)
    assert body["request_id"] == response.headers["x-purebridge-request-id"]
    return body["error"]


def test_a_bad_key_is_an_authentication_error(live, gpt_route):
    gpt_route()
    sdk = anthropic.Anthropic(base_url=live.url, api_key="sk-pb-wrong", max_retries=0)
    with sdk, pytest.raises(anthropic.AuthenticationError) as refused:
        sdk.messages.create(model="gpt", max_tokens=10, messages=HI)

    assert refused.value.status_code == 401
    assert refused.value.body["error"]["type"] == "authentication_error"


def test_the_key_may_come_as_a_bearer_token(live, api_key, gpt_route):
    gpt_route()
    with anthropic.Anthropic(base_url=live.url, auth_token=api_key, max_retries=0) as sdk:
        message = sdk.messages.create(model="gpt", max_tokens=10, messages=HI)

    assert message.content[0].text == "tok tok tok"


def test_the_same_key_in_both_headers_is_accepted(http, api_key, gpt_route):
    gpt_route()

    both = {"x-api-key": api_key, "authorization": f"Bearer {api_key}"}
    response = post_message(http, both, model="gpt")

    assert response.status_code == 200


def test_two_different_keys_are_refused(http, api_key, make_key, gpt_route):
    gpt_route()
    other = make_key(name="other")[1]

    response = post_message(
        http, {"x-api-key": api_key, "authorization": f"Bearer {other}"}, model="gpt"
    )

    error = assert_anthropic_error(response, 401, "authentication_error")
    assert "different keys" in error["message"]


def test_no_key_names_both_headers_it_may_come_in(http, gpt_route):
    gpt_route()

    error = assert_anthropic_error(post_message(http, {}, model="gpt"), 401, "authentication_error")

    assert "x-api-key" in error["message"]


def test_an_unknown_model_is_not_found(anthropic_client):
    with pytest.raises(anthropic.NotFoundError) as refused:
        anthropic_client.messages.create(model="nope", max_tokens=10, messages=HI)

    assert refused.value.body["error"]["type"] == "not_found_error"
    assert "`nope` does not exist" in refused.value.body["error"]["message"]


def test_a_spent_budget_is_a_rate_limit_error_not_to_retry(live, make_key, gpt_route):
    gpt_route()
    _, secret = make_key(name="spent", quota_usd=Decimal("0.000001"))

    sdk = anthropic.Anthropic(base_url=live.url, api_key=secret, max_retries=0)
    with sdk, pytest.raises(anthropic.RateLimitError) as refused:
        sdk.messages.create(model="gpt", max_tokens=10, messages=HI)

    assert refused.value.response.headers["x-should-retry"] == "false"
    assert refused.value.body["error"]["type"] == "rate_limit_error"


def test_max_tokens_is_required(http, api_key, gpt_route):
    gpt_route()

    response = http.post(
        "/v1/messages", headers={"x-api-key": api_key}, json={"model": "gpt", "messages": HI}
    )

    error = assert_anthropic_error(response, 400, "invalid_request_error")
    assert error["message"] == "max_tokens: Field required."


def test_a_wrong_method_is_refused_in_anthropics_shape(http, api_key):
    response = http.get("/v1/messages", headers={"x-api-key": api_key})

    assert_anthropic_error(response, 405, "invalid_request_error")


def test_chat_completions_keep_openais_error_shape(http):
    response = post_chat(http, "sk-pb-wrong", {"model": "gpt", "messages": HI})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_an_anthropic_upstreams_own_400_is_passed_on_with_its_message(
    anthropic_client, claude_route
):
    claude_route("fake?status=400")

    with pytest.raises(anthropic.BadRequestError) as refused:
        anthropic_client.messages.create(model="claude", max_tokens=10, messages=HI)

    assert refused.value.body["error"] == {
        "type": "invalid_request_error",
        "message": "fake anthropic invalid_request_error",
    }


def test_a_block_a_chat_upstream_cannot_take_is_a_clear_400(anthropic_client, gpt_route):
    gpt_route()
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "x"},
    }

    with pytest.raises(anthropic.BadRequestError) as refused:
        anthropic_client.messages.create(
            model="gpt", max_tokens=10, messages=[{"role": "user", "content": [document]}]
        )

    assert "'document' are not supported" in refused.value.body["error"]["message"]


@pytest.mark.parametrize("route", ["anthropic", "openai"])
def test_a_failing_route_fails_over_to_the_next(
    anthropic_client, claude_route, gpt_route, usage_records, route
):
    make, model = (claude_route, "claude") if route == "anthropic" else (gpt_route, "gpt")
    make("fake?status=503", "fake")

    message = anthropic_client.messages.create(model=model, max_tokens=10, messages=HI)

    assert message.content[0].text == "tok tok tok"
    [record] = usage_records()
    assert [a["status"] for a in record.attempts] == [503, 200]
    assert record.status == 200


@pytest.mark.parametrize("route", ["anthropic", "openai"])
def test_a_stream_that_breaks_ends_with_an_error_event(
    anthropic_client, claude_route, gpt_route, usage_records, route
):
    make, model = (claude_route, "claude") if route == "anthropic" else (gpt_route, "gpt")
    make("fake?tokens=4&error_after=2")

    stream = anthropic_client.messages.stream(model=model, max_tokens=10, messages=HI)
    with pytest.raises(anthropic.APIStatusError) as broken, stream as events:
        for _ in events:
            pass

    assert broken.value.body["error"]["type"] == "api_error"
    [record] = usage_records()
    assert (record.status, record.error_type) == (502, "upstream_error")


def test_request_ids_are_passed_on_and_stored(anthropic_client, claude_route, usage_records):
    claude_route()

    raw = anthropic_client.messages.with_raw_response.create(
        model="claude",
        max_tokens=10,
        messages=HI,
        extra_headers={"X-Client-Request-Id": "client-77"},
    )

    [record] = usage_records()
    assert raw.headers["request-id"].startswith("req_anthropic_")
    assert record.upstream_request_id == raw.headers["request-id"]
    assert record.client_request_id == "client-77"
    assert raw.headers["x-purebridge-request-id"] == record.request_id


def test_count_tokens_is_purebridges_own_count(anthropic_client, claude_route):
    claude_route()
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]

    counted = anthropic_client.messages.count_tokens(
        model="claude", system="Be brief.", messages=HI, tools=tools
    )

    text = 'Be brief.\nhi\n{"name":"lookup","input_schema":{"type":"object"}}'
    assert counted.input_tokens == prompt_overhead(1) + count_text(text)


def test_count_tokens_of_an_unknown_model_is_not_found(anthropic_client):
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.messages.count_tokens(model="nope", messages=HI)


@pytest.mark.parametrize("route", ["anthropic", "openai"])
def test_a_client_that_leaves_mid_stream_is_charged_what_the_upstream_reports(
    live, api_key, claude_route, gpt_route, fake_upstream, usage_records, settings, route
):
    settings.PUREBRIDGE_DRAIN_SECONDS = 5
    make, model = (claude_route, "claude") if route == "anthropic" else (gpt_route, "gpt")
    make("fake?tokens=20&interval_ms=20&prompt=33")
    body = {"model": model, "max_tokens": 50, "stream": True, "messages": HI}

    read_events_then_hang_up(live.port, api_key, body, events=4, path="/v1/messages")

    assert wait_for(lambda: fake_upstream.stats["completed"] == 1, timeout=5)
    [record] = usage_records()
    assert (record.status, record.endpoint) == (499, "messages")
    assert (record.prompt_tokens, record.completion_tokens) == (33, 20)
    assert record.estimated is False
