"""POST /v1/embeddings with the real OpenAI SDK, through PureBridge to the fake upstream."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from gateway.tokens import estimate_chars
from tests.fake_embeddings import DIMENSIONS, as_base64, vector
from tests.helpers import USER_HI

INPUT_PRICE = Decimal("1.25")  # make_model's default, per million tokens


@pytest.fixture
def embedder(make_model):
    """An embedding model with one route to the fake (its options after `?`)."""

    def make(upstream: str = "fake", public_id: str = "embed-small", **fields):
        return make_model(public_id, upstream, kind="embedding", **fields)

    return make


@pytest.mark.parametrize(
    ("given", "tokens"),
    [
        pytest.param("the quick fox", 3, id="string"),
        pytest.param(["the quick", "brown fox", "jumps"], 5, id="list-of-strings"),
        pytest.param([101, 2023, 7], 3, id="token-array"),
        pytest.param([[101, 2023], [7, 8, 9]], 5, id="list-of-token-arrays"),
    ],
)
def test_each_input_shape_is_passed_through_and_charged_at_the_input_price(
    client, embedder, fake_upstream, usage_records, given, tokens
):
    embedder()

    answer = client.embeddings.create(model="embed-small", input=given, encoding_format="float")

    items = [given] if isinstance(given, str) or isinstance(given[0], int) else given
    assert answer.model == "embed-small"
    assert [e.embedding for e in answer.data] == [vector(i, DIMENSIONS) for i in items]
    assert answer.usage.prompt_tokens == tokens
    [sent] = fake_upstream.requests
    assert sent["path"] == "/v1/embeddings"
    assert sent["body"]["input"] == given
    assert sent["body"]["model"] == "fake"
    [record] = usage_records()
    assert (record.endpoint, record.status, record.model, record.stream) == (
        "embeddings",
        200,
        "embed-small",
        False,
    )
    assert (record.prompt_tokens, record.completion_tokens) == (tokens, 0)
    assert record.cost_usd == tokens * INPUT_PRICE / 1_000_000
    assert not record.estimated


def test_base64_vectors_are_passed_through_untouched(client, embedder):
    embedder()

    raw = client.embeddings.with_raw_response.create(
        model="embed-small", input="hello", encoding_format="base64"
    )

    [item] = raw.http_response.json()["data"]
    assert item["embedding"] == as_base64(vector("hello", DIMENSIONS))


def test_the_sdk_default_asks_for_base64_and_decodes_it(client, embedder, fake_upstream):
    embedder()

    answer = client.embeddings.create(model="embed-small", input="hello")

    assert fake_upstream.requests[0]["body"]["encoding_format"] == "base64"
    assert answer.data[0].embedding == pytest.approx(vector("hello", DIMENSIONS), rel=1e-6)


def test_dimensions_and_user_reach_the_upstream(client, embedder, fake_upstream):
    embedder()

    answer = client.embeddings.create(
        model="embed-small", input="hello", dimensions=3, user="user-42", encoding_format="float"
    )

    assert len(answer.data[0].embedding) == 3
    sent = fake_upstream.requests[0]["body"]
    assert (sent["dimensions"], sent["user"]) == (3, "user-42")


def test_request_ids_are_passed_through_forwarded_and_recorded(
    client, embedder, fake_upstream, usage_records
):
    embedder()

    raw = client.embeddings.with_raw_response.create(
        model="embed-small", input="hello", extra_headers={"X-Client-Request-Id": "mine-7"}
    )

    [record] = usage_records()
    assert raw.headers["x-request-id"].startswith("req_fake_")
    assert raw.headers["x-request-id"] == record.upstream_request_id
    assert raw.headers["x-purebridge-request-id"] == record.request_id
    assert fake_upstream.requests[0]["headers"]["X-Client-Request-Id"] == "mine-7"
    assert record.client_request_id == "mine-7"


@pytest.mark.parametrize("upstream", ["fake?no_usage=1", "fake?prompt=-5", "fake?prompt=many"])
def test_missing_or_absurd_usage_is_charged_at_purebridges_estimate(
    client, embedder, usage_records, upstream
):
    embedder(upstream)
    text = "a sentence of thirty-four letters"

    client.embeddings.create(model="embed-small", input=text, encoding_format="float")

    [record] = usage_records()
    assert record.prompt_tokens == estimate_chars(len(text))
    assert (record.estimated, record.estimate_reason) == (True, "usage_missing")
    assert record.cost_usd == estimate_chars(len(text)) * INPUT_PRICE / 1_000_000


def test_an_upstream_count_past_the_cap_is_not_believed(client, embedder, usage_records):
    embedder("fake?prompt=1000000000000")

    answer = client.embeddings.create(model="embed-small", input="hello", encoding_format="float")

    [record] = usage_records()
    assert answer.usage.prompt_tokens == record.prompt_tokens == estimate_chars(len("hello"))
    assert record.estimated


@pytest.mark.parametrize("first", ["fake?status=500", "fake?status=503", "fake?status=429"])
def test_a_failing_route_falls_over_to_the_next(
    client, make_model, fake_upstream, usage_records, first
):
    make_model("embed-small", first, "fake", kind="embedding")

    answer = client.embeddings.create(model="embed-small", input="hello", encoding_format="float")

    assert len(answer.data) == 1
    assert [r["body"]["model"] for r in fake_upstream.requests] == [first, "fake"]
    [record] = usage_records()
    assert [a["status"] for a in record.attempts] == [int(first[-3:]), 200]


def test_an_unreachable_provider_falls_over_to_the_next(
    client, make_model, make_provider, dead_base_url, fake_upstream
):
    dead = make_provider("dead", base_url=dead_base_url)
    model = make_model("embed-small", "fake", kind="embedding")
    model.routes.update(priority=1)
    model.routes.create(provider=dead, upstream_model="fake", priority=0)

    answer = client.embeddings.create(model="embed-small", input="hello", encoding_format="float")

    assert len(answer.data) == 1
    assert len(fake_upstream.requests) == 1


def test_chat_model_is_refused_by_embeddings_with_a_400(client, make_model, fake_upstream):
    make_model("chat-model")

    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="chat-model", input="hello")

    assert caught.value.status_code == 400
    assert caught.value.body["type"] == "invalid_request_error"
    assert caught.value.body["param"] == "model"
    assert "embedding" in caught.value.body["message"]
    assert fake_upstream.requests == []


def test_embedding_model_is_refused_by_chat_responses_and_completions_with_a_400(
    client, embedder, fake_upstream, usage_records
):
    embedder()
    calls = [
        lambda: client.chat.completions.create(model="embed-small", messages=USER_HI),
        lambda: client.responses.create(model="embed-small", input="hi"),
        lambda: client.completions.create(model="embed-small", prompt="hi"),
    ]

    for call in calls:
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        assert caught.value.body["param"] == "model"
        assert "/v1/embeddings" in caught.value.body["message"]

    assert fake_upstream.requests == []
    assert [(r.endpoint, r.status) for r in usage_records()] == [
        ("chat.completions", 400),
        ("responses", 400),
        ("completions", 400),
    ]


def test_a_model_with_only_anthropic_routes_is_a_400(client, make_model, make_provider):
    claude = make_provider("claude", kind="anthropic")
    make_model("embed-small", "fake", provider=claude, kind="embedding")

    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="embed-small", input="hello")

    assert "OpenAI-compatible" in caught.value.body["message"]


@pytest.mark.parametrize(
    ("given", "param"),
    [
        pytest.param([], "input", id="empty-list"),
        pytest.param(["a", 1], "input[0]", id="mixed"),
        pytest.param([[1, 2], []], "input[1]", id="empty-token-array"),
        pytest.param([-1], "input[0]", id="negative-token"),
        pytest.param({"text": "a"}, "input", id="object"),
    ],
)
def test_an_input_of_no_known_shape_is_a_400_naming_it(client, embedder, given, param):
    embedder()

    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="embed-small", input=given, encoding_format="float")

    assert caught.value.body["param"] == param


def test_a_bad_key_is_a_401(live, embedder):
    embedder()
    bad = openai.OpenAI(
        base_url=f"{live.url}/v1", api_key="sk-pb-" + "x" * 48, max_retries=0, timeout=20
    )

    with bad, pytest.raises(openai.AuthenticationError) as caught:
        bad.embeddings.create(model="embed-small", input="hello")

    assert caught.value.code == "invalid_api_key"


def test_a_budget_too_small_for_the_input_is_a_429(
    live, make_key, embedder, fake_upstream, usage_records
):
    """$0.001 a day; "hello world" is 2 tokens at $1,000 a million: $0.002."""
    embedder(input="1000")
    _, secret = make_key(daily_budget_usd=Decimal("0.001"))
    sdk = openai.OpenAI(base_url=f"{live.url}/v1", api_key=secret, max_retries=0, timeout=20)

    with sdk, pytest.raises(openai.RateLimitError) as caught:
        sdk.embeddings.create(model="embed-small", input="hello world")

    assert caught.value.code == "insufficient_quota"
    assert "the input" in caught.value.body["message"]
    assert fake_upstream.requests == []
    assert [(r.endpoint, r.status) for r in usage_records()] == [("embeddings", 429)]


def test_a_budget_reserves_the_input_only(live, make_key, embedder, usage_records):
    """No output is reserved: a budget of $0.002 admits 2 tokens at $1,000 a million."""
    embedder(input="1000")
    _, secret = make_key(daily_budget_usd=Decimal("0.002"))
    sdk = openai.OpenAI(base_url=f"{live.url}/v1", api_key=secret, max_retries=0, timeout=20)

    with sdk:
        answer = sdk.embeddings.create(model="embed-small", input="hello world")

    assert answer.usage.prompt_tokens == 2
    [record] = usage_records()
    assert record.cost_usd == Decimal("0.002")


def test_embedding_models_are_listed_in_openais_model_shape(client, make_model, embedder):
    make_model("chat-model")
    embedder()

    raw = client.models.with_raw_response.list()

    data = raw.http_response.json()["data"]
    assert sorted(m["id"] for m in data) == ["chat-model", "embed-small"]
    assert all(set(m) == {"id", "object", "created", "owned_by"} for m in data)
