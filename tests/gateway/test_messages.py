"""POST /v1/messages with the real `anthropic` SDK as the client: passed
through to Anthropic routes, translated for OpenAI-compatible ones."""

from __future__ import annotations

import base64
from decimal import Decimal

import orjson
import pytest

from gateway.models import CatalogModel

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
LOOKUP = {
    "name": "lookup",
    "description": "Look a thing up.",
    "input_schema": {"type": "object", "properties": {"x": {"type": "integer"}}},
}


def cost(
    prompt: int,
    completion: int,
    cached: int = 0,
    written: int = 0,
    *,
    input: str = "1.25",
    cached_input: str = "0.125",
    output: str = "10",
    write: str | None = None,
) -> Decimal:
    """What these counts cost at make_model's default prices (or these)."""
    return (
        (prompt - cached - written) * Decimal(input)
        + cached * Decimal(cached_input)
        + written * Decimal(write or input)
        + completion * Decimal(output)
    ) / 1_000_000


def test_anthropic_route_gets_the_request_as_sent_with_its_model_rewritten(
    anthropic_client, claude_route, fake_upstream, usage_records
):
    claude_route("claude-upstream-1")

    message = anthropic_client.messages.create(
        model="claude",
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )

    assert (message.model, message.content[0].text) == ("claude", "tok tok tok")
    assert message.stop_reason == "end_turn"
    sent = fake_upstream.requests[-1]
    assert sent["path"] == "/v1/messages"
    assert sent["body"] == {
        "model": "claude-upstream-1",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert sent["headers"]["x-api-key"] == "anthropic-key"
    # The version the client was written against, not the one PureBridge speaks.
    assert (
        sent["headers"]["anthropic-version"]
        == anthropic_client.default_headers["anthropic-version"]
    )
    assert sent["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"
    [record] = usage_records()
    assert (record.endpoint, record.model, record.upstream_model) == (
        "messages",
        "claude",
        "claude-upstream-1",
    )
    assert (record.prompt_tokens, record.completion_tokens, record.estimated) == (11, 3, False)
    assert record.cost_usd == cost(11, 3)


def test_cache_reads_and_writes_through_an_anthropic_route_are_priced_as_chat_prices_them(
    anthropic_client, claude_route, usage_records
):
    claude_route("fake?prompt=100&cached=300&cache_write=50", input="3", cached="0.3", output="15")
    CatalogModel.objects.filter(public_id="claude").update(cache_write_per_mtok=Decimal("3.75"))

    message = anthropic_client.messages.create(
        model="claude", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )

    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens) == (100, 300)
    assert (usage.cache_creation_input_tokens, usage.output_tokens) == (50, 3)
    [record] = usage_records()
    assert (record.prompt_tokens, record.cached_tokens, record.cache_write_tokens) == (450, 300, 50)
    assert (
        record.cost_usd
        == (100 * Decimal(3) + 300 * Decimal("0.3") + 50 * Decimal("3.75") + 3 * Decimal(15))
        / 1_000_000
    )


def test_a_stream_through_an_anthropic_route_is_passed_on_event_by_event(
    anthropic_client, claude_route, usage_records
):
    claude_route("fake?tokens=4&cached=5&cache_write=2")

    with anthropic_client.messages.stream(
        model="claude", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        kinds = [event.type for event in stream if event.type != "text"]
        final = stream.get_final_message()

    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert final.model == "claude"
    assert final.content[0].text == "tok0 tok1 tok2 tok3 "
    assert final.usage.output_tokens == 4
    [record] = usage_records()
    assert (record.endpoint, record.stream) == ("messages", True)
    assert (record.prompt_tokens, record.cached_tokens, record.cache_write_tokens) == (18, 5, 2)
    assert record.completion_tokens == 4
    assert record.cost_usd == cost(18, 4, cached=5, written=2)


def test_tool_use_and_tool_result_round_trip_through_an_anthropic_route(
    anthropic_client, claude_route, fake_upstream, usage_records
):
    claude_route("fake?tool=lookup")

    first = anthropic_client.messages.create(
        model="claude",
        max_tokens=64,
        tools=[LOOKUP],
        messages=[{"role": "user", "content": "go"}],
    )
    call = first.content[1]
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "42"}
    anthropic_client.messages.create(
        model="claude",
        max_tokens=64,
        tools=[LOOKUP],
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {"role": "user", "content": [result]},
        ],
    )

    assert first.stop_reason == "tool_use"
    assert (call.type, call.name, call.input) == ("tool_use", "lookup", {"x": 1})
    sent = fake_upstream.requests[-1]["body"]
    assert sent["tools"] == [LOOKUP]
    assert sent["messages"][2] == {"role": "user", "content": [result]}
    assert [r.cost_usd for r in usage_records()] == [cost(11, 3)] * 2


def test_an_openai_route_gets_system_turns_and_images_as_chat_completions(
    anthropic_client, gpt_route, fake_upstream, usage_records
):
    gpt_route("gpt-upstream")

    message = anthropic_client.messages.create(
        model="gpt",
        max_tokens=50,
        extra_body={"temperature": 0.5, "top_p": 0.9},  # sent by older clients
        stop_sequences=["END"],
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        metadata={"user_id": "user-7"},
        messages=[
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi there"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                ],
            },
        ],
    )

    assert message.model == "gpt"
    assert message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    assert (message.content[0].text, message.stop_reason) == ("tok tok tok", "end_turn")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 3)
    sent = fake_upstream.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"] == {
        "model": "gpt-upstream",
        "max_tokens": 50,
        "stream": False,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "user": "user-7",
        "messages": [
            {"role": "system", "content": "Be brief.\n\nBe kind."},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi there"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                ],
            },
        ],
    }
    [record] = usage_records()
    assert (record.endpoint, record.upstream_model, record.prompt_tokens) == (
        "messages",
        "gpt-upstream",
        11,
    )
    assert record.cost_usd == cost(11, 3)


def test_a_translated_stream_has_anthropics_full_event_sequence(
    anthropic_client, gpt_route, usage_records
):
    gpt_route("fake?tokens=2&cached=4")

    with anthropic_client.messages.stream(
        model="gpt", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()

    assert [e.type for e in events if e.type != "text"] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert final.content[0].text == "tok0 tok1 "
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens) == (7, 4)
    assert final.usage.output_tokens == 2
    [record] = usage_records()
    assert (record.stream, record.prompt_tokens, record.cached_tokens) == (True, 11, 4)
    assert record.cost_usd == cost(11, 2, cached=4)


def test_tools_and_tool_results_are_translated_both_ways(
    anthropic_client, gpt_route, fake_upstream, usage_records
):
    gpt_route("fake?tool=lookup")

    first = anthropic_client.messages.create(
        model="gpt",
        max_tokens=50,
        tools=[LOOKUP],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": "go"}],
    )
    call = first.content[1]
    anthropic_client.messages.create(
        model="gpt",
        max_tokens=50,
        tools=[LOOKUP],
        tool_choice={"type": "tool", "name": "lookup"},
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "42"},
                    {"type": "text", "text": "and then?"},
                ],
            },
        ],
    )

    assert first.stop_reason == "tool_use"
    assert (call.type, call.id, call.name, call.input) == ("tool_use", call.id, "lookup", {"x": 1})
    asked, answered = (r["body"] for r in fake_upstream.requests[-2:])
    assert asked["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": LOOKUP["input_schema"],
                "description": "Look a thing up.",
            },
        }
    ]
    assert (asked["tool_choice"], asked["parallel_tool_calls"]) == ("required", False)
    assert answered["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert answered["messages"][1:] == [
        {
            "role": "assistant",
            "content": "tok tok tok",
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"x":1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "42"},
        {"role": "user", "content": "and then?"},
    ]
    assert [r.cost_usd for r in usage_records()] == [cost(11, 3)] * 2


def test_a_streamed_tool_call_arrives_as_input_json_deltas(
    anthropic_client, gpt_route, usage_records
):
    gpt_route("fake?tool=lookup&tokens=1")

    with anthropic_client.messages.stream(
        model="gpt", max_tokens=50, tools=[LOOKUP], messages=[{"role": "user", "content": "go"}]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()

    json_deltas = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert "".join(json_deltas) == '{"x": 1}'
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert (final.content[1].name, final.content[1].input) == ("lookup", {"x": 1})
    assert final.stop_reason == "tool_use"
    [record] = usage_records()
    assert record.cost_usd == cost(11, 1)


def sse_events(response) -> list[tuple[str, dict]]:
    """(event name, data) of each server-sent event of a raw response."""
    events = []
    for raw in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in raw.splitlines() if ": " in line)
        if "data" in lines:
            events.append((lines.get("event", ""), orjson.loads(lines["data"])))
    return events


@pytest.mark.parametrize("route", ["anthropic", "openai"])
def test_each_event_is_named_as_anthropic_names_it_ping_included(
    http, api_key, claude_route, gpt_route, route
):
    make = claude_route if route == "anthropic" else gpt_route
    make("fake?tokens=2")

    response = http.post(
        "/v1/messages",
        headers={"x-api-key": api_key},
        json={
            "model": "claude" if route == "anthropic" else "gpt",
            "max_tokens": 10,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )

    events = sse_events(response)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert all(name == data["type"] for name, data in events)
    names = [name for name, _ in events]
    assert "ping" in names
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    assert events[-2][1]["usage"]["output_tokens"] == 2


def test_a_system_message_between_turns_stays_a_system_message(
    anthropic_client, gpt_route, fake_upstream
):
    gpt_route()

    anthropic_client.messages.create(
        model="gpt",
        max_tokens=10,
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "system", "content": [{"type": "text", "text": "Now be terse."}]},
        ],
    )

    assert fake_upstream.requests[-1]["body"]["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Now be terse."},
    ]
