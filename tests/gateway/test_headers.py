"""Response and forwarded headers: passthrough, request ids, the body digest."""

import asyncio
import hashlib
import socket

import orjson
import pytest

from gateway.http import clean_header_value
from tests.helpers import chat_body, post_chat


def upstream_headers(fake_upstream) -> dict:
    [sent] = fake_upstream.requests
    return {name.lower(): value for name, value in sent["headers"].items()}


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_request_id_and_openai_timing_are_passed_through(
    http, api_key, make_model, stream
):
    make_model()

    response = post_chat(http, api_key, chat_body(stream=stream))

    assert response.headers["x-request-id"].startswith("req_fake_")
    assert response.headers["openai-processing-ms"] == "7"


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_organization_is_not_passed_through(http, api_key, make_model, stream):
    make_model()

    response = post_chat(http, api_key, chat_body(stream=stream))

    assert "openai-organization" not in response.headers
    assert "operator-secret-org" not in str(response.headers)


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_rate_limit_headers_are_not_passed_through(http, api_key, make_model, stream):
    make_model()

    response = post_chat(http, api_key, chat_body(stream=stream))

    assert response.headers.get("x-ratelimit-limit-requests") != "999999"


def test_every_response_has_a_purebridge_request_id(http, api_key, make_model):
    make_model()

    ok = post_chat(http, api_key, chat_body())
    streamed = post_chat(http, api_key, chat_body(stream=True))
    models = http.get("/v1/models", headers={"Authorization": f"Bearer {api_key}"})

    ids = [r.headers["x-purebridge-request-id"] for r in (ok, streamed, models)]
    assert all(i.startswith("pb-") for i in ids)
    assert len(set(ids)) == 3


def test_client_key_is_never_sent_upstream(http, api_key, make_model, fake_upstream):
    make_model()

    post_chat(http, api_key, chat_body(), headers={"Cookie": "sessionid=abc"})

    [sent] = fake_upstream.requests
    assert api_key not in str(sent)
    assert "cookie" not in upstream_headers(fake_upstream)


def test_upstream_gets_the_provider_key(http, api_key, make_provider, make_model, fake_upstream):
    provider = make_provider(api_key="sk-upstream-operator-secret-123")
    make_model("test-model", "fake", provider=provider)

    post_chat(http, api_key, chat_body())

    assert upstream_headers(fake_upstream)["authorization"] == (
        "Bearer sk-upstream-operator-secret-123"
    )


def test_client_request_id_is_forwarded_upstream(http, api_key, make_model, fake_upstream):
    make_model()

    post_chat(http, api_key, chat_body(), headers={"X-Client-Request-Id": "pb-verify-1234"})

    assert upstream_headers(fake_upstream)["x-client-request-id"] == "pb-verify-1234"


def test_client_request_id_is_forwarded_upstream_on_streams(
    http, api_key, make_model, fake_upstream
):
    make_model()

    post_chat(
        http, api_key, chat_body(stream=True), headers={"X-Client-Request-Id": "trace-stream"}
    )

    assert upstream_headers(fake_upstream)["x-client-request-id"] == "trace-stream"


def test_client_request_id_is_stored_on_the_usage_record(http, api_key, make_model, usage_records):
    make_model()

    post_chat(http, api_key, chat_body(), headers={"X-Client-Request-Id": "pb-verify-1234"})

    [record] = usage_records()
    assert record.client_request_id == "pb-verify-1234"


def test_no_client_request_id_is_invented(http, api_key, make_model, fake_upstream):
    make_model()

    post_chat(http, api_key, chat_body())

    assert "x-client-request-id" not in upstream_headers(fake_upstream)


def test_client_request_id_with_control_characters_is_cleaned(
    live, api_key, make_model, fake_upstream, usage_records
):
    make_model()
    payload = orjson.dumps(chat_body())
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + api_key.encode() + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"X-Client-Request-Id: a\tb\r\n"
        b"Content-Length: " + str(len(payload)).encode() + b"\r\nConnection: close\r\n\r\n"
    ) + payload
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 200 ")
    assert upstream_headers(fake_upstream)["x-client-request-id"] == "ab"
    assert usage_records()[0].client_request_id == "ab"


def test_client_request_id_with_cr_lf_neither_breaks_nor_injects_a_header(
    live, api_key, make_model, fake_upstream, usage_records
):
    """HTTP/1.1 parsers refuse CR/LF in a header, so this calls the ASGI
    application directly, as a laxer server or proxy in front of it might."""
    from gateway.upstream import close_session
    from purebridge.asgi import application

    make_model()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "headers": [
            (b"authorization", f"Bearer {api_key}".encode()),
            (b"content-type", b"application/json"),
            (b"x-client-request-id", b"trace-1\r\nX-Injected: yes\r\n"),
        ],
    }
    messages = [{"type": "http.request", "body": orjson.dumps(chat_body()), "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # the client never leaves
        return {}

    async def send(message: dict) -> None:
        sent.append(message)

    async def call() -> None:
        try:
            await application(scope, receive, send)
        finally:
            await close_session()

    asyncio.run(call())

    assert sent[0]["status"] == 200
    forwarded = upstream_headers(fake_upstream)
    assert "x-injected" not in forwarded
    assert "\r" not in forwarded["x-client-request-id"]
    assert "\n" not in forwarded["x-client-request-id"]
    assert forwarded["x-client-request-id"].startswith("trace-1")
    record = usage_records()[0]
    assert "\n" not in record.client_request_id and "\r" not in record.client_request_id


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (b"trace-1\r\nX-Injected: yes", "trace-1X-Injected: yes"),
        (b"a\rb\nc", "abc"),
        (b"\x00\x01nul\x7f", "nul"),
        (b"caf\xc3\xa9", "caf"),
        (b"  spaced  ", "spaced"),
    ],
)
def test_clean_header_value_keeps_only_printable_ascii(raw, clean):
    assert clean_header_value(raw) == clean


def test_clean_header_value_bounds_the_length():
    assert len(clean_header_value(b"x" * 10_000)) == 512


def test_body_sha256_is_echoed_when_enabled(http, api_key, make_model, settings):
    settings.PUREBRIDGE_BODY_SHA256_ECHO = True
    make_model()
    payload = b'{"model":"test-model","messages":[{"role":"user","content":"ping"}],"stream":false}'

    response = post_chat(http, api_key, payload)

    assert response.status_code == 200
    assert response.headers["x-purebridge-body-sha256"] == hashlib.sha256(payload).hexdigest()


def test_body_sha256_is_of_the_exact_bytes_not_of_the_parsed_json(
    http, api_key, make_model, settings
):
    settings.PUREBRIDGE_BODY_SHA256_ECHO = True
    make_model()
    payload = b'{ "model" : "test-model",\n  "messages" : [{"role":"user","content":"ping"}] }\n'

    response = post_chat(http, api_key, payload)

    assert response.headers["x-purebridge-body-sha256"] == hashlib.sha256(payload).hexdigest()


def test_body_sha256_is_echoed_on_an_error_too(http, api_key, make_model, settings):
    settings.PUREBRIDGE_BODY_SHA256_ECHO = True
    payload = b'{"model": "no-such-model", "messages": [{"role": "user"}]}'

    response = post_chat(http, api_key, payload)

    assert response.status_code == 404
    assert response.headers["x-purebridge-body-sha256"] == hashlib.sha256(payload).hexdigest()


def test_body_sha256_is_absent_when_disabled(http, api_key, make_model, settings):
    settings.PUREBRIDGE_BODY_SHA256_ECHO = False
    make_model()

    response = post_chat(http, api_key, chat_body())

    assert response.status_code == 200
    assert "x-purebridge-body-sha256" not in response.headers


def test_stream_response_is_not_buffered_by_proxies(http, api_key, make_model):
    make_model()

    response = post_chat(http, api_key, chat_body(stream=True))

    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["cache-control"] == "no-cache"
