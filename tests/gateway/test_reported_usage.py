"""Every completed request is billed, whatever usage its upstream reports:
missing, empty, negative, a word, or absurdly large (gateway/reported.py)."""

from __future__ import annotations

import pytest

from gateway import reported
from gateway.tokens import estimate_chars
from tests.helpers import sse_chunks, sse_data

ROUTES = [
    pytest.param("chat", "openai", id="chat-openai"),
    pytest.param("chat", "anthropic", id="chat-anthropic"),
    pytest.param("responses", "responses", id="responses-passthrough"),
    pytest.param("responses", "openai", id="responses-translated-openai"),
    pytest.param("responses", "anthropic", id="responses-translated-anthropic"),
]
# What the upstream reports, and which count that makes PureBridge replace.
LIES = [
    pytest.param("prompt=1000000000000", "prompt", id="absurd-prompt"),
    pytest.param("prompt=-5", "prompt", id="negative-prompt"),
    pytest.param("completion=many", "completion", id="word-completion"),
    pytest.param("completion=1.5", "completion", id="fractional-completion"),
    pytest.param("no_usage=1", "both", id="no-usage"),
]
PROMPT_NAMES = {"prompt_tokens", "input_tokens"}
COMPLETION_NAMES = {"completion_tokens", "output_tokens"}


@pytest.fixture
def route_to(make_model, make_provider):
    def make(kind: str, upstream_model: str):
        if kind == "responses":
            provider = make_provider("fake-responses", kind="openai", responses_api=True)
        elif kind == "anthropic":
            provider = make_provider("fake-anthropic", kind="anthropic", api_key="anthropic-key")
        else:
            provider = make_provider("fake-chat", kind="openai")
        return make_model("m", upstream_model, provider=provider)

    return make


def _ask(http, api_key: str, endpoint: str, stream: bool) -> tuple[dict | None, str]:
    """Send one request; the usage object the client was sent, and the text."""
    headers = {"Authorization": f"Bearer {api_key}"}
    if endpoint == "chat":
        body: dict = {"model": "m", "messages": [{"role": "user", "content": "hi there"}]}
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        response = http.post("/v1/chat/completions", json=body, headers=headers)
        assert response.status_code == 200, response.text
        if not stream:
            answer = response.json()
            return answer.get("usage"), answer["choices"][0]["message"]["content"]
        chunks = sse_chunks(response.text)
        text = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
        )
        return next((c["usage"] for c in chunks if c.get("usage")), None), text
    body = {"model": "m", "input": "hi there", "stream": stream}
    response = http.post("/v1/responses", json=body, headers=headers)
    assert response.status_code == 200, response.text
    if stream:
        events = [e for e in sse_chunks(response.text) if e.get("type")]
        assert events[-1]["type"] == "response.completed", sse_data(response.text)[-1]
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        return events[-1]["response"].get("usage"), text
    answer = response.json()
    text = "".join(
        part["text"]
        for item in answer["output"]
        if item["type"] == "message"
        for part in item["content"]
    )
    return answer.get("usage"), text


def _sent_counts(usage: dict) -> tuple[int, int]:
    if "prompt_tokens" in usage:
        return usage["prompt_tokens"], usage["completion_tokens"]
    return usage["input_tokens"], usage["output_tokens"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("lie", "replaced"), LIES)
@pytest.mark.parametrize(("endpoint", "kind"), ROUTES)
def test_a_request_whose_upstream_misreports_usage_is_billed_and_marked_estimated(
    http, api_key, route_to, usage_records, endpoint, kind, lie, replaced, stream
):
    route_to(kind, f"fake?tokens=5&{lie}")

    sent, text = _ask(http, api_key, endpoint, stream)

    [record] = usage_records()
    assert record.status == 200
    assert record.estimated is True
    assert record.cost_usd > 0
    assert 0 < record.prompt_tokens < 100
    delivered = estimate_chars(len(text))
    if replaced == "both":
        assert record.estimate_reason == "usage_missing"
        assert record.completion_tokens == delivered
    else:
        assert record.estimate_reason.startswith("usage_invalid:")
        fields = set(record.estimate_reason.split(":")[1].split(","))
        if replaced == "prompt":
            assert fields & PROMPT_NAMES and not fields & COMPLETION_NAMES
            assert record.completion_tokens == 5
        else:
            assert fields & COMPLETION_NAMES and not fields & PROMPT_NAMES
            assert record.prompt_tokens == 11
            assert record.completion_tokens == delivered
    if sent is not None:
        # The client is sent the numbers it is billed for, never the upstream's lie.
        assert _sent_counts(sent) == (record.prompt_tokens, record.completion_tokens)
        assert sent["total_tokens"] == record.prompt_tokens + record.completion_tokens


@pytest.mark.parametrize("kind", ["responses", "openai", "anthropic"])
def test_a_long_responses_answer_without_usage_is_estimated_from_its_characters(
    http, api_key, route_to, usage_records, kind
):
    route_to(kind, "fake?tokens=80&no_usage=1")

    _, text = _ask(http, api_key, "responses", stream=False)

    [record] = usage_records()
    assert len(text) > 300
    assert record.completion_tokens == estimate_chars(len(text))
    assert record.estimate_reason == "usage_missing"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_anthropic_reply_with_empty_usage_is_not_recorded_as_free(
    http, api_key, route_to, usage_records, stream
):
    route_to("anthropic", "fake?no_usage=1")

    _ask(http, api_key, "chat", stream)

    [record] = usage_records()
    assert record.estimated is True
    assert record.prompt_tokens > 0 and record.completion_tokens > 0
    assert record.cost_usd > 0


def test_truthful_usage_reaches_the_client_untouched(http, api_key, route_to, usage_records):
    route_to("openai", "fake?prompt=40&cached=8&reasoning=2&tokens=5")

    sent, _ = _ask(http, api_key, "chat", stream=False)

    [record] = usage_records()
    assert record.estimated is False and record.estimate_reason == ""
    assert sent == {
        "prompt_tokens": 40,
        "completion_tokens": 5,
        "total_tokens": 45,
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }


@pytest.mark.parametrize(
    "value",
    [-5, "many", "NaN", 1.5, float("nan"), float("inf"), 10**12, True, None, [], {}],
)
def test_a_value_that_is_not_a_whole_number_in_range_is_not_a_count(value):
    assert reported.count(value) is None


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (7, 7), (7.0, 7), (10_000_000, 10**7)])
def test_whole_numbers_in_range_are_counts(value, expected):
    assert reported.count(value) == expected


def test_details_larger_than_their_whole_are_capped_and_said():
    counts = reported.read(
        {
            "prompt_tokens": 10,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 50},
            "completion_tokens_details": {"reasoning_tokens": "lots"},
        },
        reported.CHAT,
        prompt=99,
        completion=99,
    )

    assert (counts.prompt, counts.cached, counts.completion, counts.reasoning) == (10, 10, 4, 0)
    assert counts.replaced == ["cached_tokens", "reasoning_tokens"]
    assert counts.reported is True


def test_a_usage_object_without_counts_is_not_reported():
    counts = reported.read({}, reported.RESPONSES, prompt=12, completion=3)

    assert counts.reported is False
    assert (counts.prompt, counts.completion) == (12, 3)
    assert counts.replaced == ["input_tokens", "output_tokens"]
