"""An upstream's answer is read up to PUREBRIDGE_MAX_UPSTREAM_BODY_BYTES: a
larger body, or a larger stream event, is an upstream failure, not something
held whole in the worker and relayed."""

import pytest

from tests.gateway.test_errors import assert_openai_error
from tests.helpers import chat_body, post_chat, sse_chunks, sse_data

CAP = 64 * 1024
OVER = 100 * 1024


@pytest.fixture(autouse=True)
def _small_cap(settings):
    settings.PUREBRIDGE_MAX_UPSTREAM_BODY_BYTES = CAP


@pytest.fixture
def model_for(make_model, make_provider):
    """The public model `m` on a chat completions or a Responses upstream."""

    def make(kind: str, upstream_model: str):
        provider = make_provider("fake-" + kind, kind="openai", responses_api=kind == "responses")
        return make_model("m", upstream_model, provider=provider)

    return make


def post(http, api_key: str, kind: str, **fields):
    if kind == "chat":
        return post_chat(http, api_key, chat_body("m", **fields))
    body = {"model": "m", "input": "hi", **fields}
    return http.post("/v1/responses", json=body, headers={"Authorization": f"Bearer {api_key}"})


@pytest.mark.parametrize("kind", ["chat", "responses"])
@pytest.mark.parametrize(
    "framing",
    [
        pytest.param("", id="content-length"),
        pytest.param("&chunked=1", id="chunked"),
        pytest.param("&gzip=1", id="gzip-inflated-past-the-cap"),
    ],
)
def test_an_answer_over_the_cap_is_a_502(http, api_key, model_for, usage_records, kind, framing):
    model_for(kind, f"fake?pad={OVER}{framing}")

    response = post(http, api_key, kind)

    error = assert_openai_error(response, 502, "upstream_error")
    assert str(CAP) in error["message"]
    assert usage_records()[0].status == 502


@pytest.mark.parametrize("kind", ["chat", "responses"])
def test_an_answer_under_the_cap_is_relayed(http, api_key, model_for, kind):
    model_for(kind, f"fake?pad={CAP // 2}&chunked=1")

    response = post(http, api_key, kind)

    assert response.status_code == 200
    assert "x" * (CAP // 2) in response.text


def test_an_oversize_answer_fails_over_to_the_next_route(http, api_key, make_model, usage_records):
    make_model("m", f"fake?pad={OVER}&chunked=1", "fake")

    response = post(http, api_key, "chat")

    assert response.status_code == 200
    attempts = usage_records()[0].attempts
    assert [(a["status"], a["error"]) for a in attempts] == [(502, "upstream_error"), (200, "")]


def test_a_stream_event_over_the_cap_ends_a_chat_stream_with_an_error_event(
    http, api_key, model_for, usage_records
):
    model_for("chat", f"fake?pad={OVER}")

    response = post(http, api_key, "chat", stream=True)

    assert response.status_code == 200
    assert sse_data(response.text)[-1] != "[DONE]"
    last = sse_chunks(response.text)[-1]
    assert last["error"]["type"] == "upstream_error"
    assert str(CAP) in last["error"]["message"]
    assert "x" * 1000 not in response.text
    assert usage_records()[0].status == 502


def test_a_stream_event_over_the_cap_ends_a_responses_stream_with_response_failed(
    http, api_key, model_for
):
    model_for("responses", f"fake?pad={OVER}")

    response = post(http, api_key, "responses", stream=True)

    assert response.status_code == 200
    last = sse_chunks(response.text)[-1]
    assert last["type"] == "response.failed"
    assert str(CAP) in last["response"]["error"]["message"]
    assert "x" * 1000 not in response.text


@pytest.mark.parametrize("kind", ["chat", "responses"])
def test_a_stream_event_under_the_cap_is_relayed(http, api_key, model_for, kind):
    model_for(kind, f"fake?pad={CAP // 2}")

    response = post(http, api_key, kind, stream=True)

    assert response.status_code == 200
    assert "x" * (CAP // 2) in response.text
    assert "error" not in sse_chunks(response.text)[-1]
