"""POST /v1/responses through the real OpenAI SDK, against a Responses upstream
(passed through), a chat-only upstream and an Anthropic upstream (translated)."""

import openai
import pytest

TOOL = {
    "type": "function",
    "name": "lookup",
    "description": "Look a thing up.",
    "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
}


@pytest.fixture(params=["responses", "chat", "anthropic"])
def upstream_kind(request) -> str:
    return request.param


@pytest.fixture
def model_for(make_model, make_provider):
    """The public model `m` served by the kind of upstream under test."""

    def make(kind: str, upstream_model: str = "fake"):
        if kind == "responses":
            provider = make_provider("fake-responses", kind="openai", responses_api=True)
        elif kind == "anthropic":
            provider = make_provider("fake-anthropic", kind="anthropic", api_key="anthropic-key")
        else:
            provider = make_provider("fake-chat", kind="openai")
        return make_model("m", upstream_model, provider=provider)

    return make


def upstream_paths(fake_upstream) -> list[str]:
    return [r.get("path", "/v1/chat/completions") for r in fake_upstream.requests]


def test_create_without_streaming_answers_with_the_public_model_id(
    client, model_for, upstream_kind, fake_upstream
):
    model_for(upstream_kind)

    response = client.responses.create(model="m", input="hi", instructions="Be brief.")

    assert response.status == "completed"
    assert response.model == "m"
    assert response.output_text.startswith("tok")
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    expected_path = {
        "responses": "/v1/responses",
        "chat": "/v1/chat/completions",
        "anthropic": "/v1/messages",
    }
    assert upstream_paths(fake_upstream) == [expected_path[upstream_kind]]


def test_create_with_streaming_emits_the_full_event_sequence(client, model_for, upstream_kind):
    model_for(upstream_kind)

    events = list(client.responses.create(model="m", input="hi", stream=True))

    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert "response.output_item.added" in types
    assert types.index("response.content_part.added") < types.index("response.output_text.delta")
    assert [e.sequence_number for e in events] == sorted(e.sequence_number for e in events)
    completed = events[-1].response
    assert completed.model == "m"
    assert completed.usage.input_tokens > 0
    assert completed.usage.output_tokens_details.reasoning_tokens == 0


def test_the_sdk_stream_helper_builds_the_final_response(client, model_for, upstream_kind):
    model_for(upstream_kind)

    with client.responses.stream(model="m", input=[{"role": "user", "content": "hi"}]) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert "".join(deltas) == final.output_text
    assert final.output_text.startswith("tok")


def test_a_tool_call_round_trips(client, model_for, upstream_kind, fake_upstream):
    model_for(upstream_kind, "fake?tool=lookup")

    first = client.responses.create(model="m", input="use the tool", tools=[TOOL])
    [call] = [item for item in first.output if item.type == "function_call"]
    second = client.responses.create(
        model="m",
        tools=[TOOL],
        input=[
            {"role": "user", "content": "use the tool"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "forty-two"},
        ],
    )

    assert call.name == "lookup"
    assert '"x"' in call.arguments
    assert second.status == "completed"
    sent = fake_upstream.requests[-1]["body"]
    assert "forty-two" in str(sent)
    assert call.call_id in str(sent)


def test_a_streamed_tool_call_arrives_whole_in_output_item_done(client, model_for, upstream_kind):
    model_for(upstream_kind, "fake?tool=lookup")

    events = list(client.responses.create(model="m", input="go", tools=[TOOL], stream=True))

    done = [
        e.item
        for e in events
        if e.type == "response.output_item.done" and e.item.type == "function_call"
    ]
    assert [(item.name, item.arguments.replace(" ", "")) for item in done] == [
        ("lookup", '{"x":1}')
    ]


@pytest.mark.parametrize("upstream_kind", ["chat", "anthropic"])
def test_a_stream_that_breaks_ends_with_response_failed(client, model_for, upstream_kind):
    model_for(upstream_kind, "fake?tokens=5&cut_after=2")

    events = list(client.responses.create(model="m", input="hi", stream=True))

    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    assert events[-1].response.error.code == "server_error"


def test_a_passed_through_stream_that_breaks_ends_with_response_failed(client, model_for):
    model_for("responses", "fake?tokens=5&cut_after=2")

    events = list(client.responses.create(model="m", input="hi", stream=True))

    assert events[-1].type == "response.failed"
    assert events[-1].response.model == "m"


def test_usage_is_recorded_from_response_completed(client, model_for, usage_records):
    model_for("responses", "fake?prompt=40&cached=8&reasoning=5&tokens=7")

    client.responses.create(model="m", input="hi")

    [record] = usage_records()
    assert record.endpoint == "responses"
    assert (record.prompt_tokens, record.cached_tokens, record.reasoning_tokens) == (40, 8, 5)
    assert record.completion_tokens == 7
    assert record.estimated is False


def test_previous_response_id_is_kept_by_purebridge_for_a_translated_route(
    client, model_for, fake_upstream
):
    model_for("chat")

    first = client.responses.create(model="m", input="my name is Ada")
    client.responses.create(model="m", input="what is my name?", previous_response_id=first.id)

    sent = fake_upstream.requests[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "my name is Ada"
    assert sent[1]["content"] == first.output_text


def test_previous_response_id_is_passed_through_to_a_responses_upstream(
    client, model_for, fake_upstream
):
    model_for("responses")

    first = client.responses.create(model="m", input="hi")
    client.responses.create(model="m", input="again", previous_response_id=first.id)

    assert fake_upstream.requests[-1]["body"]["previous_response_id"] == first.id


def test_another_account_cannot_continue_a_stored_conversation(live, client, model_for, make_key):
    from accounts.models import User

    model_for("chat")
    first = client.responses.create(model="m", input="secret plans")
    outsider = User.objects.create_user("outsider@example.com", "pw-outsider-1234").account
    _, outsider_key = make_key(account=outsider)
    other = openai.OpenAI(base_url=f"{live.url}/v1", api_key=outsider_key, max_retries=0)

    with pytest.raises(openai.NotFoundError) as caught:
        other.responses.create(model="m", input="continue", previous_response_id=first.id)

    assert caught.value.body["code"] == "previous_response_not_found"


def test_codex_style_input_is_translated_for_a_chat_upstream(
    http, api_key, model_for, fake_upstream
):
    """What Codex 0.169 sends: tools declared in an additional_tools item with a
    namespace and a freeform custom tool, developer messages, web_search."""
    model_for("chat")
    body = {
        "model": "m",
        "stream": True,
        "store": False,
        "reasoning": None,
        "include": [],
        "tools": [{"type": "web_search", "external_web_access": False}],
        "input": [
            {
                "type": "additional_tools",
                "role": "developer",
                "tools": [
                    {
                        "type": "namespace",
                        "name": "functions",
                        "tools": [
                            {
                                "type": "custom",
                                "name": "exec",
                                "description": "Run code.",
                                "format": {
                                    "type": "grammar",
                                    "syntax": "lark",
                                    "definition": "start: /.+/",
                                },
                            },
                            {
                                "type": "function",
                                "name": "wait",
                                "strict": False,
                                "parameters": {"type": "object", "properties": {}},
                            },
                        ],
                    }
                ],
            },
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "You are Codex."}],
            },
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "reasoning", "summary": [], "encrypted_content": "opaque"},
            {"type": "custom_tool_call", "call_id": "c1", "name": "exec", "input": "print(1)"},
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "1"},
        ],
    }

    response = http.post("/v1/responses", json=body, headers={"Authorization": f"Bearer {api_key}"})

    assert response.status_code == 200
    assert '"type":"response.completed"' in response.text
    sent = fake_upstream.requests[-1]["body"]
    assert [t["function"]["name"] for t in sent["tools"]] == ["exec", "wait"]
    assert sent["messages"][0] == {"role": "system", "content": "You are Codex."}
    assert sent["messages"][2]["tool_calls"][0]["function"] == {
        "name": "exec",
        "arguments": '{"input":"print(1)"}',
    }
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": "c1", "content": "1"}


def test_a_custom_tool_call_comes_back_as_a_custom_tool_call_item(http, api_key, model_for):
    model_for("chat", "fake?tool=exec&tool_args=%7B%22input%22%3A%22print(2)%22%7D")
    body = {
        "model": "m",
        "input": [
            {
                "type": "additional_tools",
                "tools": [{"type": "custom", "name": "exec", "description": "Run code."}],
            },
            {"role": "user", "content": "run it"},
        ],
    }

    response = http.post("/v1/responses", json=body, headers={"Authorization": f"Bearer {api_key}"})

    [item] = [i for i in response.json()["output"] if i["type"] != "message"]
    assert item["type"] == "custom_tool_call"
    assert (item["name"], item["input"]) == ("exec", "print(2)")
