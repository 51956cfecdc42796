"""The real OpenAI Python SDK against the live server."""

import openai
import pytest

from tests.helpers import USER_HI


def test_sdk_lists_the_enabled_models(client, make_model):
    make_model("alpha")
    make_model("beta")

    models = client.models.list()

    assert sorted(m.id for m in models.data) == ["alpha", "beta"]


def test_sdk_retrieves_one_model(client, make_model):
    make_model("alpha")

    model = client.models.retrieve("alpha")

    assert model.id == "alpha"


def test_sdk_chat_returns_the_upstream_answer_under_the_public_model_id(client, make_model):
    make_model("codex-auto-review", "fake?tokens=4")

    completion = client.chat.completions.create(model="codex-auto-review", messages=USER_HI)

    assert completion.model == "codex-auto-review"
    assert completion.choices[0].message.content == "tok tok tok tok"
    assert completion.usage.prompt_tokens == 11
    assert completion.usage.completion_tokens == 4


def test_sdk_streams_a_chat_chunk_by_chunk(client, make_model):
    make_model("codex-auto-review", "fake?tokens=3")

    stream = client.chat.completions.create(
        model="codex-auto-review", messages=USER_HI, stream=True
    )
    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "tok0 tok1 tok2 "
    )
    assert {c.model for c in chunks} == {"codex-auto-review"}


def test_upstream_receives_its_own_model_name_and_the_request_fields(
    client, make_model, fake_upstream
):
    make_model("codex-auto-review", "fake")

    client.chat.completions.create(
        model="codex-auto-review", messages=USER_HI, temperature=0.25, max_tokens=7
    )

    [sent] = fake_upstream.requests
    assert sent["body"]["model"] == "fake"
    assert sent["body"]["messages"] == USER_HI
    assert sent["body"]["temperature"] == 0.25
    assert sent["body"]["max_tokens"] == 7


def test_sdk_reads_the_request_ids_from_the_raw_response(client, make_model, usage_records):
    make_model()

    raw = client.chat.completions.with_raw_response.create(model="test-model", messages=USER_HI)

    assert raw.parse().model == "test-model"
    [record] = usage_records()
    assert raw.headers["x-purebridge-request-id"] == record.request_id
    assert raw.headers["x-request-id"].startswith("req_fake_")
    assert raw.headers["x-request-id"] == record.upstream_request_id


def test_sdk_raises_authentication_error_for_a_bad_key(live, make_model):
    make_model()
    bad = openai.OpenAI(
        base_url=f"{live.url}/v1", api_key="sk-pb-" + "x" * 48, max_retries=0, timeout=20
    )

    with bad, pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="test-model", messages=USER_HI)

    assert caught.value.code == "invalid_api_key"


def test_sdk_raises_not_found_for_an_unknown_model(client, make_model):
    make_model()

    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=USER_HI)

    assert caught.value.code == "model_not_found"


def test_model_the_key_may_not_use_is_not_found(live, make_key, make_model):
    make_model("allowed")
    make_model("forbidden")
    _, secret = make_key(allowed_models=["allowed"])
    sdk = openai.OpenAI(base_url=f"{live.url}/v1", api_key=secret, max_retries=0, timeout=20)

    with sdk, pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="forbidden", messages=USER_HI)

    assert caught.value.code == "model_not_found"


def test_model_the_key_may_not_use_is_absent_from_the_model_list(live, make_key, make_model):
    make_model("allowed")
    make_model("forbidden")
    _, secret = make_key(allowed_models=["allowed"])
    sdk = openai.OpenAI(base_url=f"{live.url}/v1", api_key=secret, max_retries=0, timeout=20)

    with sdk:
        ids = [m.id for m in sdk.models.list().data]

    assert ids == ["allowed"]


def test_key_restricted_to_a_model_can_use_it(live, make_key, make_model):
    make_model("allowed")
    _, secret = make_key(allowed_models=["allowed"])
    sdk = openai.OpenAI(base_url=f"{live.url}/v1", api_key=secret, max_retries=0, timeout=20)

    with sdk:
        completion = sdk.chat.completions.create(model="allowed", messages=USER_HI)

    assert completion.model == "allowed"
