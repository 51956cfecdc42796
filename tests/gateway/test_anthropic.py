"""Chat completions served by an Anthropic upstream, translated both ways."""

import openai
import pytest

from gateway.models import CatalogModel
from gateway.providers.anthropic import to_messages_request


@pytest.fixture
def claude(make_model, make_provider):
    def make(upstream_model: str = "fake", **prices):
        provider = make_provider("fake-anthropic", kind="anthropic", api_key="anthropic-key")
        return make_model("claude", upstream_model, provider=provider, **prices)

    return make


def test_a_chat_completion_is_answered_by_the_messages_api(client, claude, fake_upstream):
    claude()

    completion = client.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    )

    assert completion.model == "claude"
    assert completion.choices[0].message.content == "tok tok tok"
    assert completion.choices[0].finish_reason == "stop"
    sent = fake_upstream.requests[-1]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == "anthropic-key"
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert sent["body"]["system"] == "Be brief."
    assert sent["body"]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}
    ]
    # No cap in the request: the model's default, which is what admission reserved.
    assert sent["body"]["max_tokens"] == CatalogModel.objects.get().default_max_output_tokens


def test_a_streamed_chat_is_translated_chunk_by_chunk(client, claude):
    claude("fake?tokens=4")

    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok0 tok1 tok2 tok3 "
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 4
    assert all(c.model == "claude" for c in chunks)


def test_tool_calls_and_tool_results_round_trip(client, claude, fake_upstream):
    claude("fake?tool=lookup")
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]

    first = client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "go"}], tools=tools
    )
    call = first.choices[0].message.tool_calls[0]
    client.chat.completions.create(
        model="claude",
        tools=tools,
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "42"},
        ],
    )

    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, call.function.arguments) == ("lookup", '{"x":1}')
    sent = fake_upstream.requests[-1]["body"]
    assert sent["tools"] == [{"name": "lookup", "input_schema": {"type": "object"}}]
    assert sent["messages"][1]["content"] == [
        {"type": "tool_use", "id": call.id, "name": "lookup", "input": {"x": 1}}
    ]
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": call.id, "content": "42"}
    ]


def test_a_streamed_tool_call_arrives_as_tool_call_deltas(client, claude):
    claude("fake?tool=lookup")
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]

    chunks = list(
        client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "go"}], tools=tools, stream=True
        )
    )

    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "lookup"
    assert "".join(tc.function.arguments or "" for tc in calls) == '{"x": 1}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_cache_reads_and_writes_are_recorded_and_priced(client, claude, usage_records):
    from decimal import Decimal

    claude("fake?prompt=100&cached=300&cache_write=50", input="3", cached="0.3", output="15")
    from gateway.models import CatalogModel

    CatalogModel.objects.filter(public_id="claude").update(cache_write_per_mtok=Decimal("3.75"))

    client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}])

    [record] = usage_records()
    assert (record.prompt_tokens, record.cached_tokens, record.cache_write_tokens) == (450, 300, 50)
    expected = (
        100 * Decimal(3) + 300 * Decimal("0.3") + 50 * Decimal("3.75") + 3 * Decimal(15)
    ) / 1_000_000
    assert record.cost_usd == expected


def test_anthropic_request_id_is_returned_and_stored(client, claude, usage_records):
    claude()

    raw = client.chat.completions.with_raw_response.create(
        model="claude", messages=[{"role": "user", "content": "hi"}]
    )

    [record] = usage_records()
    assert raw.headers["request-id"].startswith("req_anthropic_")
    assert record.upstream_request_id == raw.headers["request-id"]


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, openai.BadRequestError), (413, openai.APIStatusError)],
)
def test_anthropic_client_errors_keep_their_status(client, claude, status, error):
    claude(f"fake?status={status}")

    with pytest.raises(error) as caught:
        client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}])

    assert caught.value.status_code == status
    assert "anthropic-key" not in str(caught.value.body)


def test_an_overloaded_anthropic_upstream_is_a_502(client, claude):
    claude("fake?status=529")

    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}])

    assert caught.value.status_code == 502


def test_images_as_urls_and_base64_become_image_blocks():
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                ],
            }
        ]
    }

    request = to_messages_request(body, "claude-x", stream=False, default_max_tokens=4096)

    assert request["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
        },
    ]


def test_system_and_developer_messages_anywhere_become_the_system_prompt():
    body = {
        "messages": [
            {"role": "system", "content": "A."},
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": "B."},
            {"role": "user", "content": "again"},
        ]
    }

    request = to_messages_request(body, "claude-x", stream=False, default_max_tokens=4096)

    assert request["system"] == "A.\n\nB."
    assert [m["role"] for m in request["messages"]] == ["user"]
    assert len(request["messages"][0]["content"]) == 2


def test_stop_temperature_and_tool_choice_are_translated():
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "stop": "END",
        "temperature": 1.7,
        "max_tokens": 99,
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }

    request = to_messages_request(body, "claude-x", stream=True, default_max_tokens=4096)

    assert request["stop_sequences"] == ["END"]
    assert request["temperature"] == 1.0
    assert request["max_tokens"] == 99
    assert request["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert request["stream"] is True
