"""The SSE relay: order, model rewriting, usage chunk, mid-stream failures, disconnects."""

import socket
import time

import openai
import orjson
import pytest

from tests.helpers import (
    USER_HI,
    chat_body,
    post_chat,
    read_events_then_hang_up,
    sse_chunks,
    sse_data,
    stream_content,
    wait_for,
)

MID_STREAM_FAULTS = ["cut_after=2", "error_after=2", "invalid_json=1"]


def test_stream_keeps_the_chunk_order_and_ends_with_done(http, api_key, make_model):
    make_model("test-model", "fake?tokens=6")

    response = post_chat(http, api_key, chat_body(stream=True))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_data(response.text)
    assert events[-1] == "[DONE]"
    assert events.count("[DONE]") == 1
    assert stream_content(sse_chunks(response.text)) == "tok0 tok1 tok2 tok3 tok4 tok5 "


def test_stream_chunks_carry_the_public_model_id_never_the_upstream_name(http, api_key, make_model):
    make_model("codex-auto-review", "fake?tokens=3")

    response = post_chat(http, api_key, chat_body("codex-auto-review", stream=True))

    chunks = sse_chunks(response.text)
    assert len(chunks) >= 5
    assert {chunk["model"] for chunk in chunks} == {"codex-auto-review"}
    assert "fake?tokens" not in response.text


def test_stream_with_usage_requested_keeps_the_model_rewrite_on_the_usage_chunk(
    http, api_key, make_model
):
    make_model("codex-auto-review", "fake?tokens=2")

    response = post_chat(
        http,
        api_key,
        chat_body("codex-auto-review", stream=True, stream_options={"include_usage": True}),
    )

    assert {chunk["model"] for chunk in sse_chunks(response.text)} == {"codex-auto-review"}


def test_upstream_is_always_asked_for_stream_usage(http, api_key, make_model, fake_upstream):
    make_model()

    post_chat(http, api_key, chat_body(stream=True))

    [sent] = fake_upstream.requests
    assert sent["body"]["stream_options"]["include_usage"] is True


def test_upstream_is_asked_for_stream_usage_even_when_the_client_said_no(
    http, api_key, make_model, fake_upstream
):
    make_model()

    post_chat(http, api_key, chat_body(stream=True, stream_options={"include_usage": False}))

    [sent] = fake_upstream.requests
    assert sent["body"]["stream_options"]["include_usage"] is True


def test_usage_chunk_is_dropped_when_the_client_did_not_ask(
    http, api_key, make_model, usage_records
):
    make_model("test-model", "fake?tokens=3")

    response = post_chat(http, api_key, chat_body(stream=True))

    chunks = sse_chunks(response.text)
    assert all("usage" not in chunk for chunk in chunks)
    assert all(chunk["choices"] for chunk in chunks)
    [record] = usage_records()
    assert (record.prompt_tokens, record.completion_tokens) == (11, 3)
    assert record.estimated is False


def test_usage_chunk_is_kept_when_the_client_asked(http, api_key, make_model):
    make_model("test-model", "fake?tokens=3")

    response = post_chat(
        http, api_key, chat_body(stream=True, stream_options={"include_usage": True})
    )

    chunks = sse_chunks(response.text)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 11
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert sse_data(response.text)[-1] == "[DONE]"


def test_sdk_reports_stream_usage_when_asked(client, make_model):
    make_model("test-model", "fake?tokens=4&prompt=20")

    chunks = list(
        client.chat.completions.create(
            model="test-model",
            messages=USER_HI,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert chunks[-1].usage.prompt_tokens == 20
    assert chunks[-1].usage.completion_tokens == 4


@pytest.mark.parametrize("fault", MID_STREAM_FAULTS)
def test_mid_stream_failure_ends_with_an_error_event_and_no_done(http, api_key, make_model, fault):
    make_model("test-model", f"fake?tokens=5&{fault}")

    response = post_chat(http, api_key, chat_body(stream=True))

    assert response.status_code == 200
    events = sse_data(response.text)
    assert "[DONE]" not in events
    last = orjson.loads(events[-1])
    assert set(last) == {"error"}
    assert set(last["error"]) == {"message", "type", "param", "code"}
    assert last["error"]["message"]


@pytest.mark.parametrize("fault", MID_STREAM_FAULTS)
def test_mid_stream_failure_comes_after_the_chunks_already_relayed(
    http, api_key, make_model, fault
):
    make_model("test-model", f"fake?tokens=5&{fault}")

    response = post_chat(http, api_key, chat_body(stream=True))

    chunks = sse_chunks(response.text)
    assert stream_content(chunks[:-1]).startswith("tok0 ")


@pytest.mark.parametrize("fault", MID_STREAM_FAULTS)
def test_sdk_raises_on_a_mid_stream_failure(client, make_model, fault):
    make_model("test-model", f"fake?tokens=5&{fault}")

    stream = client.chat.completions.create(model="test-model", messages=USER_HI, stream=True)

    with pytest.raises(openai.APIError) as caught:
        for _ in stream:
            pass

    # The SDK read PureBridge's error event; a dropped connection would be an
    # APIConnectionError instead.
    assert not isinstance(caught.value, openai.APIConnectionError)
    assert caught.value.body["type"] == "upstream_error"


def test_mid_stream_error_event_never_shows_the_upstream_url(
    http, api_key, make_model, fake_upstream
):
    make_model("test-model", "fake?tokens=5&cut_after=2")

    response = post_chat(http, api_key, chat_body(stream=True))

    assert f"127.0.0.1:{fake_upstream.port}" not in response.text


@pytest.mark.parametrize("fault", MID_STREAM_FAULTS)
def test_usage_of_a_failed_stream_is_marked_estimated(
    http, api_key, make_model, usage_records, fault
):
    make_model("test-model", f"fake?tokens=5&{fault}")

    post_chat(http, api_key, chat_body(stream=True))

    [record] = usage_records()
    assert record.estimated is True
    assert record.completion_tokens > 0
    assert record.prompt_tokens > 0
    assert record.cost_usd > 0


def test_usage_of_a_failed_stream_records_the_failure(http, api_key, make_model, usage_records):
    make_model("test-model", "fake?tokens=5&cut_after=2")

    post_chat(http, api_key, chat_body(stream=True))

    [record] = usage_records()
    assert record.status >= 500
    assert record.error_type


def test_stream_that_stalls_between_chunks_ends_with_a_timeout_event(
    http, api_key, make_provider, make_model
):
    provider = make_provider(idle_timeout=0.3)
    make_model("test-model", "fake?tokens=4&interval_ms=2000", provider=provider)

    response = post_chat(http, api_key, chat_body(stream=True))

    events = sse_data(response.text)
    assert "[DONE]" not in events
    assert orjson.loads(events[-1])["error"]["code"] == "upstream_timeout"


def test_the_idle_timeout_applies_after_a_longer_first_byte_timeout(
    http, api_key, make_provider, make_model
):
    provider = make_provider(first_byte_timeout=30, idle_timeout=0.3)
    make_model("test-model", "fake?tokens=4&interval_ms=5000", provider=provider)

    started = time.monotonic()
    response = post_chat(http, api_key, chat_body(stream=True))
    elapsed = time.monotonic() - started

    events = sse_data(response.text)
    assert orjson.loads(events[-1])["error"]["code"] == "upstream_timeout"
    assert elapsed < 3  # the idle deadline, not the first byte's 30 s


def test_a_stream_longer_than_its_idle_timeout_completes_while_chunks_keep_coming(
    http, api_key, make_provider, make_model
):
    provider = make_provider(idle_timeout=0.3)
    make_model("test-model", "fake?tokens=12&interval_ms=100", provider=provider)

    response = post_chat(http, api_key, chat_body(stream=True))

    events = sse_data(response.text)
    assert events[-1] == "[DONE]"
    assert "".join(
        orjson.loads(e)["choices"][0]["delta"].get("content") or ""
        for e in events[:-1]
        if orjson.loads(e).get("choices")
    ).startswith("tok0 tok1")


def test_stream_longer_than_the_total_timeout_ends_with_a_timeout_event(
    http, api_key, make_provider, make_model
):
    provider = make_provider(total_timeout=0.6)
    make_model("test-model", "fake?tokens=20&interval_ms=100", provider=provider)

    response = post_chat(http, api_key, chat_body(stream=True))

    events = sse_data(response.text)
    assert "[DONE]" not in events
    assert orjson.loads(events[-1])["error"]["code"] == "upstream_timeout"


def test_stream_is_relayed_as_it_arrives_not_buffered(http, api_key, make_model, fake_upstream):
    make_model("test-model", "fake?tokens=4&interval_ms=300")
    headers = {"Authorization": f"Bearer {api_key}"}

    with http.stream(
        "POST", "/v1/chat/completions", json=chat_body(stream=True), headers=headers
    ) as response:
        lines = response.iter_lines()
        first = next(line for line in lines if '"tok0 "' in line)
        upstream_done_at_first_chunk = fake_upstream.stats["completed"]
        rest = list(lines)

    assert first.startswith("data: ")
    assert upstream_done_at_first_chunk == 0
    assert [line for line in rest if line][-1] == "data: [DONE]"


def test_client_disconnect_closes_the_upstream_stream(
    live, api_key, make_model, fake_upstream, settings
):
    settings.PUREBRIDGE_DRAIN_SECONDS = 0  # close at once instead of draining for usage
    make_model("test-model", "fake?tokens=50&interval_ms=50")

    read_events_then_hang_up(live.port, api_key, chat_body(stream=True), events=2)

    assert wait_for(lambda: fake_upstream.stats["client_gone"] == 1, timeout=2)
    assert fake_upstream.stats["completed"] == 0


def test_client_disconnect_is_recorded_as_499_estimated(
    live, api_key, make_model, fake_upstream, usage_records, settings
):
    settings.PUREBRIDGE_DRAIN_SECONDS = 0  # close at once instead of draining for usage
    make_model("test-model", "fake?tokens=50&interval_ms=50")

    read_events_then_hang_up(live.port, api_key, chat_body(stream=True), events=2)

    [record] = usage_records()
    assert record.status == 499
    assert record.error_type == "client_disconnected"
    assert record.estimated is True
    assert record.stream is True
    assert record.completion_tokens > 0


def test_client_disconnect_before_the_answer_cancels_the_upstream_call(
    live, api_key, make_model, fake_upstream, usage_records
):
    make_model("test-model", "fake?first_ms=5000")
    payload = orjson.dumps(chat_body())
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + api_key.encode() + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
    )
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        sock.sendall(request)
        assert wait_for(lambda: fake_upstream.requests, timeout=2)

    assert wait_for(lambda: fake_upstream.stats["client_gone"] == 1, timeout=2)
    [record] = usage_records()
    assert (record.status, record.error_type) == (499, "client_disconnected")


def test_time_to_first_token_includes_the_upstream_delay(http, api_key, make_model, usage_records):
    make_model("test-model", "fake?first_ms=300")

    post_chat(http, api_key, chat_body(stream=True))

    [record] = usage_records()
    assert record.ttft_ms >= 300
    assert record.latency_ms >= record.ttft_ms


def test_time_to_first_byte_of_a_plain_answer_includes_the_upstream_delay(
    http, api_key, make_model, usage_records
):
    make_model("test-model", "fake?first_ms=300")

    post_chat(http, api_key, chat_body())

    [record] = usage_records()
    assert record.ttft_ms >= 300


def test_stream_flag_is_recorded(http, api_key, make_model, usage_records):
    make_model()

    post_chat(http, api_key, chat_body(stream=True))
    post_chat(http, api_key, chat_body(stream=False))

    assert [r.stream for r in usage_records()] == [True, False]
