"""POST /v1/completions (legacy text completions) with the real OpenAI SDK,
through PureBridge to the fake upstream."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

# make_model's default prices, per million tokens.
INPUT, OUTPUT = Decimal("1.25"), Decimal("10")


def cost(prompt: int, completion: int) -> Decimal:
    return (prompt * INPUT + completion * OUTPUT) / 1_000_000


def test_a_completion_comes_back_under_the_public_model_id_and_is_recorded(
    client, make_model, fake_upstream, usage_records
):
    make_model("coder", "fake?tokens=4")

    raw = client.completions.with_raw_response.create(model="coder", prompt="def add(a, b):")
    answer = raw.parse()

    assert answer.model == "coder"
    assert answer.object == "text_completion"
    assert answer.choices[0].text == "tok0 tok1 tok2 tok3"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 4)
    [sent] = fake_upstream.requests
    assert (sent["path"], sent["body"]["model"]) == ("/v1/completions", "fake?tokens=4")
    [record] = usage_records()
    assert (record.endpoint, record.status, record.stream) == ("completions", 200, False)
    assert (record.prompt_tokens, record.completion_tokens) == (11, 4)
    assert record.cost_usd == cost(11, 4)
    assert raw.headers["x-request-id"] == record.upstream_request_id
    assert not record.estimated


def test_a_stream_arrives_chunk_by_chunk_without_the_usage_chunk_it_did_not_ask_for(
    client, make_model, fake_upstream, usage_records
):
    make_model("coder", "fake?tokens=3")

    chunks = list(client.completions.create(model="coder", prompt="x = ", stream=True))

    assert "".join(c.choices[0].text for c in chunks if c.choices) == "tok0 tok1 tok2 "
    assert {c.model for c in chunks} == {"coder"}
    assert all(c.usage is None for c in chunks)
    assert fake_upstream.requests[0]["body"]["stream_options"] == {"include_usage": True}
    [record] = usage_records()
    assert (record.stream, record.prompt_tokens, record.completion_tokens) == (True, 11, 3)
    assert record.cost_usd == cost(11, 3)
    assert not record.estimated


def test_a_stream_that_asks_for_usage_ends_with_it(client, make_model, usage_records):
    make_model("coder", "fake?tokens=2")

    chunks = list(
        client.completions.create(
            model="coder", prompt="x = ", stream=True, stream_options={"include_usage": True}
        )
    )

    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 2)
    [record] = usage_records()
    assert record.cost_usd == cost(11, 2)


def test_suffix_stop_echo_and_the_other_fields_reach_the_upstream(
    client, make_model, fake_upstream
):
    make_model("coder")

    answer = client.completions.create(
        model="coder",
        prompt="def add(a, b):\n",
        suffix="\n\nprint(add(1, 2))",
        max_tokens=32,
        stop=["\n\n"],
        echo=True,
        n=2,
        best_of=3,
        temperature=0.1,
    )

    sent = fake_upstream.requests[0]["body"]
    assert sent["suffix"] == "\n\nprint(add(1, 2))"
    assert (sent["max_tokens"], sent["stop"], sent["echo"]) == (32, ["\n\n"], True)
    assert (sent["n"], sent["best_of"], sent["temperature"]) == (2, 3, 0.1)
    assert [c.text for c in answer.choices] == ["def add(a, b):\ntok0 tok1 tok2"] * 2


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param(["first", "second"], id="list-of-strings"),
        pytest.param([50256, 318], id="token-array"),
        pytest.param([[50256], [318, 257]], id="list-of-token-arrays"),
    ],
)
def test_each_prompt_shape_is_passed_through(client, make_model, fake_upstream, prompt):
    make_model("coder")

    client.completions.create(model="coder", prompt=prompt)

    assert fake_upstream.requests[0]["body"]["prompt"] == prompt


def test_missing_usage_is_charged_at_purebridges_estimate(client, make_model, usage_records):
    make_model("coder", "fake?no_usage=1&tokens=4")

    client.completions.create(model="coder", prompt="sixteen letters!")

    [record] = usage_records()
    # The prompt: 16 characters, 4 a token; the answer: "tok0 tok1 tok2 tok3", 19.
    assert (record.prompt_tokens, record.completion_tokens) == (4, 5)
    assert (record.estimated, record.estimate_reason) == (True, "usage_missing")
    assert record.cost_usd == cost(4, 5)


@pytest.mark.parametrize("first", ["fake?status=500", "fake?status=429"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_failing_route_falls_over_to_the_next(
    client, make_model, fake_upstream, usage_records, first, stream
):
    make_model("coder", first, "fake")

    answer = client.completions.create(model="coder", prompt="x", stream=stream)

    text = (
        "".join(c.choices[0].text for c in answer if c.choices)
        if stream
        else answer.choices[0].text
    )
    assert text.startswith("tok0")
    assert [r["body"]["model"] for r in fake_upstream.requests] == [first, "fake"]
    [record] = usage_records()
    assert [a["status"] for a in record.attempts] == [int(first[-3:]), 200]


def test_a_stream_whose_first_event_is_an_error_falls_over(client, make_model, fake_upstream):
    make_model("coder", "fake?error_first=1", "fake")

    chunks = list(client.completions.create(model="coder", prompt="x", stream=True))

    assert "".join(c.choices[0].text for c in chunks if c.choices) == "tok0 tok1 tok2 "
    assert len(fake_upstream.requests) == 2


def test_a_failure_mid_stream_ends_it_with_an_error_event(client, make_model, usage_records):
    make_model("coder", "fake?tokens=5&error_after=2")

    with pytest.raises(openai.APIError):
        list(client.completions.create(model="coder", prompt="x", stream=True))

    [record] = usage_records()
    assert record.status == 502


def test_an_anthropic_route_is_skipped(
    client, make_model, make_provider, fake_upstream, usage_records
):
    claude = make_provider("claude", kind="anthropic")
    model = make_model("coder", "claude-model", provider=claude)
    fake = make_provider("fake-openai")
    model.routes.create(provider=fake, upstream_model="fake", priority=5)

    answer = client.completions.create(model="coder", prompt="x")

    assert answer.choices[0].text == "tok0 tok1 tok2"
    assert [r["path"] for r in fake_upstream.requests] == ["/v1/completions"]
    [record] = usage_records()
    assert record.provider == "fake-openai"


def test_a_model_with_only_anthropic_routes_is_a_400(client, make_model, make_provider):
    claude = make_provider("claude", kind="anthropic")
    make_model("coder", "claude-model", provider=claude)

    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="coder", prompt="x")

    assert caught.value.body["param"] == "model"
    assert "OpenAI-compatible" in caught.value.body["message"]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        pytest.param({"prompt": 5}, "prompt", id="prompt-number"),
        pytest.param({"prompt": "x", "suffix": 5}, "suffix", id="suffix-number"),
        pytest.param({"prompt": "x", "max_tokens": 0}, "max_tokens", id="max-tokens-zero"),
        pytest.param({"prompt": "x", "best_of": 10_000}, "best_of", id="best-of-huge"),
    ],
)
def test_a_bad_field_is_a_400_naming_it(client, make_model, fields, param):
    make_model("coder")

    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="coder", **fields)

    assert caught.value.body["param"] == param


def test_a_bad_key_is_a_401(live, make_model):
    make_model("coder")
    bad = openai.OpenAI(
        base_url=f"{live.url}/v1", api_key="sk-pb-" + "x" * 48, max_retries=0, timeout=20
    )

    with bad, pytest.raises(openai.AuthenticationError) as caught:
        bad.completions.create(model="coder", prompt="x")

    assert caught.value.code == "invalid_api_key"


def test_the_output_cap_is_reserved_against_a_budget(
    live, make_key, make_model, fake_upstream, usage_records
):
    """$0.01 a day at $10 a million output tokens: 1,000 fit, the model's
    default of 4,096 (no max_tokens) does not; max_tokens=16 does."""
    make_model("coder")
    _, secret = make_key(daily_budget_usd=Decimal("0.01"))
    sdk = openai.OpenAI(base_url=f"{live.url}/v1", api_key=secret, max_retries=0, timeout=20)

    with sdk:
        with pytest.raises(openai.RateLimitError) as caught:
            sdk.completions.create(model="coder", prompt="x")
        sdk.completions.create(model="coder", prompt="x", max_tokens=16)

    assert caught.value.code == "insufficient_quota"
    assert "4096 output tokens" in caught.value.body["message"]
    assert len(fake_upstream.requests) == 1
    assert [(r.endpoint, r.status) for r in usage_records()] == [
        ("completions", 429),
        ("completions", 200),
    ]
