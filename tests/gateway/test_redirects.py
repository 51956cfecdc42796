"""An upstream that answers with a redirect is never followed: the target is a
server the operator never configured (and, on the same host, the provider's
credentials would go along)."""

from collections.abc import Iterator

import pytest

from tests.fake_upstream import FakeUpstream
from tests.gateway.test_errors import assert_openai_error
from tests.helpers import chat_body, post_chat, sse_chunks


@pytest.fixture
def elsewhere() -> Iterator[FakeUpstream]:
    """A second upstream on loopback that no provider points at."""
    upstream = FakeUpstream().start_in_thread()
    yield upstream
    upstream.stop()


@pytest.fixture
def model_for(make_model, make_provider):
    """The public model `m` on one kind of upstream, with these routes in order."""

    def make(kind: str, *upstream_models: str):
        provider = {
            "chat": lambda: make_provider("fake-chat", kind="openai", api_key="op-secret"),
            "responses": lambda: make_provider("fake-responses", kind="openai", responses_api=True),
            "anthropic": lambda: make_provider("fake-claude", kind="anthropic", api_key="a-key"),
        }[kind]()
        return make_model("m", *upstream_models, provider=provider)

    return make


def post(http, api_key: str, path: str, **fields):
    if path == "/v1/chat/completions":
        return post_chat(http, api_key, chat_body("m", **fields))
    body = {"model": "m", "input": "hi", **fields}
    return http.post(path, json=body, headers={"Authorization": f"Bearer {api_key}"})


def assert_untouched(upstream: FakeUpstream) -> None:
    assert upstream.stats["hits"] == 0
    assert upstream.requests == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_502_and_its_target_hears_nothing(
    http, api_key, model_for, elsewhere, status
):
    model_for("chat", f"fake?redirect={status}&to={elsewhere.port}")

    response = post(http, api_key, "/v1/chat/completions")

    assert_openai_error(response, 502, "upstream_error")
    assert str(elsewhere.port) not in response.text
    assert_untouched(elsewhere)


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("responses", "/v1/responses"),
        ("chat", "/v1/responses"),
        ("anthropic", "/v1/chat/completions"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_every_upstream_api_refuses_redirects(
    http, api_key, model_for, elsewhere, kind, path, stream
):
    model_for(kind, f"fake?redirect=307&to={elsewhere.port}")

    response = post(http, api_key, path, stream=stream)

    assert_openai_error(response, 502, "upstream_error")
    assert_untouched(elsewhere)


def test_a_redirecting_route_fails_over_to_the_next(
    http, api_key, model_for, elsewhere, fake_upstream, usage_records
):
    model_for("chat", f"fake?redirect=307&to={elsewhere.port}", "fake?tokens=2")

    response = post(http, api_key, "/v1/chat/completions", stream=True)

    assert response.status_code == 200
    assert sse_chunks(response.text)[-1]["choices"][0]["finish_reason"] == "stop"
    assert_untouched(elsewhere)
    attempts = usage_records()[0].attempts
    assert [(a["status"], a["error"]) for a in attempts] == [(307, "upstream_error"), (200, "")]
