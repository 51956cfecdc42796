"""Every error of the /v1 contract: status, OpenAI envelope, x-purebridge-request-id."""

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from gateway.catalogue import invalidate_catalogue
from gateway.models import CatalogModel
from keys.services import key_set_active
from tests.helpers import chat_body, post_chat


def assert_openai_error(response, status: int, type: str, code: str | None = None) -> dict:
    """The response is `status` with an OpenAI error envelope; returns the error object."""
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-purebridge-request-id"].startswith("pb-")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == type
    if code is not None:
        assert error["code"] == code
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(b'{"model": "test-model", "messages": [', None, id="bad-json"),
        pytest.param(b"", None, id="empty-body"),
        pytest.param(b'[{"model": "test-model"}]', None, id="not-an-object"),
        pytest.param(b'"test-model"', None, id="a-string"),
        pytest.param(b'{"model": "\xff", "messages": []}', None, id="invalid-utf8"),
        pytest.param({"messages": [{"role": "user", "content": "hi"}]}, "model", id="no-model"),
        pytest.param({"model": "", "messages": [{"role": "user"}]}, "model", id="empty-model"),
        pytest.param({"model": 7, "messages": [{"role": "user"}]}, "model", id="model-number"),
        pytest.param({"model": "test-model"}, "messages", id="no-messages"),
        pytest.param({"model": "test-model", "messages": []}, "messages", id="empty-messages"),
        pytest.param({"model": "test-model", "messages": "hi"}, "messages", id="messages-string"),
        pytest.param({"model": "test-model", "messages": ["hi"]}, "messages[0]", id="message-str"),
        pytest.param(
            {"model": "test-model", "messages": [{"content": "hi"}]},
            "messages[0].role",
            id="no-role",
        ),
        pytest.param(chat_body(stream_options=True), "stream_options", id="stream-options-bool"),
        pytest.param(chat_body(stream="yes"), "stream", id="stream-string"),
        pytest.param(chat_body(stream=1), "stream", id="stream-number"),
    ],
)
def test_malformed_request_gets_400_naming_the_field(http, api_key, make_model, body, param):
    make_model()

    response = post_chat(http, api_key, body)

    error = assert_openai_error(response, 400, "invalid_request_error")
    assert error["param"] == param


def test_bad_json_message_says_it_is_not_json(http, api_key, make_model):
    make_model()

    response = post_chat(http, api_key, b"{nope")

    assert "JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"model": "\xff", "messages": []}', "must be encoded as UTF-8"),
        (b'{"model": 5, "messages": []}', "'model' must be a string"),
        (b'{"model": true, "messages": []}', "not a boolean"),
    ],
)
def test_a_body_of_the_wrong_encoding_or_model_type_says_what_is_wrong(
    http, api_key, make_model, body, says
):
    make_model()

    response = post_chat(http, api_key, body)

    assert says in response.json()["error"]["message"]


def test_an_unknown_model_is_recorded_as_asked(http, api_key, make_model, usage_records):
    """Its owner finds in the request log what was mistyped."""
    make_model()

    response = post_chat(http, api_key, chat_body("gpt-5-mini-typo"))

    assert response.status_code == 404
    [record] = usage_records()
    assert (record.model, record.error_type) == ("gpt-5-mini-typo", "model_not_found")


def test_missing_authorization_header_gets_401(http, make_model):
    make_model()

    response = post_chat(http, None, chat_body())

    assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer", "sk-pb-" + "a" * 48, "Token sk-pb-" + "a" * 48],
)
def test_malformed_authorization_header_gets_401(http, make_model, authorization):
    make_model()

    response = post_chat(http, None, chat_body(), headers={"Authorization": authorization})

    assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")


@pytest.mark.parametrize(
    "key",
    [
        "sk-proj-" + "a" * 48,
        "sk-pb-short",
        "sk-pb-" + "a" * 47 + "!",
        "sk-pb-" + "a" * 49,
        "not-a-key-at-all",
    ],
)
def test_key_that_is_not_purebridge_shaped_gets_401(http, make_model, key):
    make_model()

    response = post_chat(http, key, chat_body())

    assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")


def test_unknown_key_gets_401(http, make_model):
    make_model()

    response = post_chat(http, "sk-pb-" + "Z" * 48, chat_body())

    assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")


def test_key_with_a_known_lookup_but_a_wrong_secret_gets_401(http, api_key, make_model):
    make_model()
    forged = api_key[:-1] + ("A" if api_key[-1] != "A" else "B")

    response = post_chat(http, forged, chat_body())

    assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")


def test_disabled_key_gets_401(http, make_key, make_model):
    make_model()
    key, secret = make_key()
    key_set_active(api_key=key, active=False)

    response = post_chat(http, secret, chat_body())

    assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")


def test_expired_key_gets_401(http, make_key, make_model):
    make_model()
    _, secret = make_key(expires_at=timezone.now() - timedelta(seconds=1))

    response = post_chat(http, secret, chat_body())

    assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")


def test_key_expiring_later_is_accepted(http, make_key, make_model):
    make_model()
    _, secret = make_key(expires_at=timezone.now() + timedelta(hours=1))

    response = post_chat(http, secret, chat_body())

    assert response.status_code == 200


def test_session_cookie_is_not_accepted_as_credentials(http, make_model):
    make_model()

    response = post_chat(
        http, None, chat_body(), headers={"Cookie": "sessionid=abc; csrftoken=def"}
    )

    assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")


def test_unknown_model_gets_404_model_not_found(http, api_key, make_model):
    make_model()

    response = post_chat(http, api_key, chat_body("no-such-model"))

    error = assert_openai_error(response, 404, "invalid_request_error", "model_not_found")
    assert "does not exist or you do not have access to it" in error["message"]
    assert error["param"] == "model"


def test_model_the_key_may_not_use_gets_the_same_404_as_an_unknown_model(
    http, make_key, make_model
):
    make_model("secret-model")
    _, secret = make_key(allowed_models=["other-model"])

    forbidden = post_chat(http, secret, chat_body("secret-model")).json()["error"]
    unknown = post_chat(http, secret, chat_body("missing-model")).json()["error"]

    assert forbidden["message"].replace("secret-model", "X") == unknown["message"].replace(
        "missing-model", "X"
    )
    assert (forbidden["type"], forbidden["code"]) == (unknown["type"], unknown["code"])


def test_disabled_model_gets_404(http, api_key, make_model):
    model = make_model()
    model.enabled = False
    model.save()

    response = post_chat(http, api_key, chat_body())

    assert_openai_error(response, 404, "invalid_request_error", "model_not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("POST", "/v1/images/generations"),
        ("GET", "/v1"),
        ("POST", "/v1/audio/speech"),
    ],
)
def test_unknown_v1_url_gets_404(http, api_key, method, path):
    response = http.request(method, path, headers={"Authorization": f"Bearer {api_key}"})

    assert_openai_error(response, 404, "invalid_request_error")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("PUT", "/v1/chat/completions", "POST"),
        ("DELETE", "/v1/models", "GET"),
        ("POST", "/v1/models", "GET"),
    ],
)
def test_wrong_method_gets_405_with_allow(http, api_key, method, path, allowed):
    response = http.request(method, path, headers={"Authorization": f"Bearer {api_key}"})

    assert_openai_error(response, 405, "invalid_request_error")
    assert response.headers["allow"] == allowed


def test_body_over_the_cap_gets_413(http, api_key, make_model, settings):
    settings.PUREBRIDGE_MAX_BODY_BYTES = 1024
    make_model()
    body = chat_body(messages=[{"role": "user", "content": "x" * 2000}])

    response = post_chat(http, api_key, body)

    assert_openai_error(response, 413, "invalid_request_error", "request_too_large")


def test_streamed_body_over_the_cap_gets_413(http, api_key, make_model, settings):
    settings.PUREBRIDGE_MAX_BODY_BYTES = 1024
    make_model()
    payload = orjson.dumps(chat_body(messages=[{"role": "user", "content": "x" * 2000}]))

    # No Content-Length: the body arrives in chunks and the cap applies while reading.
    response = http.post(
        "/v1/chat/completions",
        content=iter([payload[:800], payload[800:]]),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )

    assert_openai_error(response, 413, "invalid_request_error", "request_too_large")


def test_body_under_the_cap_is_accepted(http, api_key, make_model, settings):
    settings.PUREBRIDGE_MAX_BODY_BYTES = 1024
    make_model()

    response = post_chat(http, api_key, chat_body(messages=[{"role": "user", "content": "x"}]))

    assert response.status_code == 200


def test_upstream_429_is_passed_on_as_rate_limit_error_with_retry_after(http, api_key, make_model):
    make_model("test-model", "fake?status=429&retry_after=7")

    response = post_chat(http, api_key, chat_body())

    assert_openai_error(response, 429, "rate_limit_error", "rate_limit_exceeded")
    assert response.headers["retry-after"] == "7"


def test_upstream_429_without_retry_after_still_gets_one(http, api_key, make_model):
    make_model("test-model", "fake?status=429")

    response = post_chat(http, api_key, chat_body())

    assert_openai_error(response, 429, "rate_limit_error", "rate_limit_exceeded")
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("status", [400, 413, 422])
def test_upstream_4xx_is_passed_through_with_its_status_and_message(
    http, api_key, make_model, status
):
    make_model("test-model", f"fake?status={status}")

    response = post_chat(http, api_key, chat_body())

    error = assert_openai_error(response, status, "invalid_request_error", "fake_error")
    assert error["message"] == f"fake upstream error {status} for test-model"


@pytest.mark.parametrize("status", [401, 403, 404])
def test_upstream_refusing_purebridge_is_a_502_not_the_clients_fault(
    http, api_key, make_model, status
):
    make_model("test-model", f"fake?status={status}")

    response = post_chat(http, api_key, chat_body())

    assert_openai_error(response, 502, "upstream_error")


def test_upstream_4xx_on_a_stream_request_is_a_json_error_not_a_stream(http, api_key, make_model):
    make_model("test-model", "fake?status=400")

    response = post_chat(http, api_key, chat_body(stream=True))

    assert_openai_error(response, 400, "invalid_request_error", "fake_error")


def test_upstream_error_never_shows_the_upstream_url_key_or_model_name(
    http, api_key, make_provider, make_model, fake_upstream
):
    provider = make_provider(api_key="sk-upstream-operator-secret-123")
    make_model("test-model", "fake?status=400&leak=1", provider=provider)

    response = post_chat(http, api_key, chat_body())

    assert response.status_code == 400
    assert (
        "sk-upstream-operator-secret-123" in fake_upstream.requests[0]["headers"]["Authorization"]
    )
    text = response.text
    assert "sk-upstream-operator-secret-123" not in text
    assert fake_upstream.base_url not in text
    assert f"127.0.0.1:{fake_upstream.port}" not in text
    assert "fake?status" not in text


def test_upstream_500_gets_502(http, api_key, make_model):
    make_model("test-model", "fake?status=500")

    response = post_chat(http, api_key, chat_body())

    assert_openai_error(response, 502, "upstream_error")


def test_upstream_500_message_never_shows_the_upstream_secrets(
    http, api_key, make_provider, make_model, fake_upstream
):
    provider = make_provider(api_key="sk-upstream-operator-secret-123")
    make_model("test-model", "fake?status=500&leak=1", provider=provider)

    response = post_chat(http, api_key, chat_body())

    assert response.status_code == 502
    assert "sk-upstream-operator-secret-123" not in response.text
    assert f"127.0.0.1:{fake_upstream.port}" not in response.text


def test_upstream_invalid_json_gets_502(http, api_key, make_model):
    make_model("test-model", "fake?invalid_json=1")

    response = post_chat(http, api_key, chat_body())

    assert_openai_error(response, 502, "upstream_error")


def test_unreachable_upstream_gets_502(http, api_key, make_provider, make_model, dead_base_url):
    dead = make_provider("dead", base_url=dead_base_url, connect_timeout=2)
    make_model("test-model", "fake", provider=dead)

    response = post_chat(http, api_key, chat_body())

    error = assert_openai_error(response, 502, "upstream_error")
    assert dead_base_url not in error["message"]


def test_model_with_no_routes_gets_503(http, api_key):
    CatalogModel.objects.create(public_id="routeless")

    response = post_chat(http, api_key, chat_body("routeless"))

    assert_openai_error(response, 503, "service_unavailable")


def test_model_whose_routes_are_all_disabled_gets_503(http, api_key, make_model):
    model = make_model()
    model.routes.update(enabled=False)
    invalidate_catalogue()  # a queryset update sends no signal

    response = post_chat(http, api_key, chat_body())

    assert_openai_error(response, 503, "service_unavailable")


def test_upstream_that_hangs_past_first_byte_timeout_gets_504(
    http, api_key, make_provider, make_model
):
    provider = make_provider(first_byte_timeout=0.5)
    make_model("test-model", "fake?hang=1", provider=provider)

    response = post_chat(http, api_key, chat_body())

    assert_openai_error(response, 504, "timeout", "upstream_timeout")


def test_stream_whose_first_chunk_is_late_gets_504_before_any_byte(
    http, api_key, make_provider, make_model
):
    provider = make_provider(first_byte_timeout=0.5)
    make_model("test-model", "fake?first_ms=3000", provider=provider)

    response = post_chat(http, api_key, chat_body(stream=True))

    assert_openai_error(response, 504, "timeout", "upstream_timeout")


def test_stream_whose_first_event_is_an_error_gets_502_before_any_byte(http, api_key, make_model):
    make_model("test-model", "fake?error_first=1")

    response = post_chat(http, api_key, chat_body(stream=True))

    assert_openai_error(response, 502, "upstream_error")


def test_very_long_model_name_gets_a_plain_404(http, api_key, make_model):
    make_model()

    response = post_chat(http, api_key, chat_body("m" * 5000))

    assert_openai_error(response, 404, "invalid_request_error", "model_not_found")
