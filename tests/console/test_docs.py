"""The public docs page, generated from this site's base URL and models."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from decimal import Decimal

import pytest

from console.docs import FALLBACK_EMBEDDING_MODEL, HEADER_PATTERN, PLACEHOLDER_KEY

SECRET = re.compile(r"sk-pb-[A-Za-z0-9]{48}")


def snippet(page: str, name: str) -> str:
    match = re.search(rf'<code id="snippet-{name}">(.*?)</code>', page, re.S)
    assert match, f"no snippet {name}"
    return html.unescape(match.group(1))


@pytest.fixture
def site(settings, make_model):
    settings.PUREBRIDGE_API_BASE_URL = "https://api.example.test"
    make_model("codex-auto-review")
    make_model("gpt-5.4-mini")
    hidden = make_model("not-public-yet")
    hidden.enabled = False
    hidden.save()


def test_docs_are_public_and_built_from_this_sites_base_url_and_models(anonymous_client, site):
    response = anonymous_client.get("/docs/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "https://api.example.test/v1" in page
    assert "codex-auto-review" in page and "gpt-5.4-mini" in page
    assert "not-public-yet" not in page
    assert "api.purebridge.uk" not in page


def test_every_snippet_uses_the_placeholder_key_never_a_real_one(owner_client, site, owner_key):
    page = owner_client.get("/docs/").content.decode()

    assert PLACEHOLDER_KEY in snippet(page, "python")
    assert not SECRET.search(page)


@pytest.mark.parametrize(
    "name",
    ["chat", "sse", "verify", "env", "python", "fields", "codex", "opencode", "aider"]
    + ["continue", "cline", "workflows", "completions", "continue-autocomplete"]
    + ["anthropic", "claude-code"],
)
def test_the_chosen_model_is_in_every_snippet(anonymous_client, site, name):
    page = anonymous_client.get("/docs/?model=gpt-5.4-mini").content.decode()

    assert "gpt-5.4-mini" in snippet(page, name)
    assert "codex-auto-review" not in snippet(page, name)


def test_the_codex_snippet_uses_the_responses_wire_api_and_an_auth_json(anonymous_client, site):
    codex = snippet(anonymous_client.get("/docs/").content.decode(), "codex")

    assert 'wire_api = "responses"' in codex
    assert 'base_url = "https://api.example.test/v1"' in codex
    assert '{"OPENAI_API_KEY": "sk-xxxxxxxxxxxxxxxxxxxxxxxx"}' in codex


def test_an_unknown_model_falls_back_to_an_enabled_one(anonymous_client, site):
    page = anonymous_client.get("/docs/?model=not-public-yet").content.decode()

    assert "not-public-yet" not in page
    assert '"model": "codex-auto-review"' in snippet(page, "chat")


def test_the_model_picker_rerenders_only_the_snippets_for_htmx(anonymous_client, site):
    response = anonymous_client.get("/docs/?model=gpt-5.4-mini", headers={"HX-Request": "true"})

    page = response.content.decode()
    assert "<html" not in page
    assert page.lstrip().startswith('<div id="docs-content"')
    assert "gpt-5.4-mini" in snippet(page, "env")


def test_the_header_pattern_keeps_openai_and_ratelimit_headers():
    headers = (
        "HTTP/1.1 200 OK\r\ndate: Tue, 01 Dec 2026 00:00:00 GMT\r\ncontent-type: application/json\r\n"
        "x-request-id: req_1\r\nopenai-processing-ms: 7\r\nopenai-version: 2020-10-01\r\n"
        "x-ratelimit-limit-requests: 60\r\nx-ratelimit-remaining-tokens: 999\r\n"
        "x-purebridge-request-id: pb-1\r\n\r\n"
    )

    kept = subprocess.run(
        ["grep", "-Ei", HEADER_PATTERN], input=headers, capture_output=True, text=True
    ).stdout

    names = [line.split(":")[0] for line in kept.splitlines()]
    assert names == [
        "date",
        "x-request-id",
        "openai-processing-ms",
        "openai-version",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-tokens",
        "x-purebridge-request-id",
    ]


def test_the_documented_header_check_works_against_this_server(
    live, settings, make_model, api_key, anonymous_client
):
    settings.PUREBRIDGE_API_BASE_URL = live.url
    make_model("codex-auto-review")
    command = snippet(anonymous_client.get("/docs/").content.decode(), "verify")

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command.replace(PLACEHOLDER_KEY, api_key)],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    names = {line.split(":")[0] for line in result.stdout.splitlines() if ":" in line}
    assert {"x-request-id", "x-purebridge-request-id", "date"} <= names
    assert {"openai-processing-ms", "openai-version"} <= names
    assert "\r" not in result.stdout


def _shape(value: object) -> object:
    """The field names of a JSON document, nested, without the values."""
    if isinstance(value, dict):
        return {name: _shape(inner) for name, inner in value.items()}
    return None


def test_the_documented_own_key_curl_answers_the_documented_shape(
    live, settings, make_key, anonymous_client
):
    settings.PUREBRIDGE_API_BASE_URL = live.url
    _, secret = make_key(daily_budget_usd=Decimal("5"))
    page = anonymous_client.get("/docs/").content.decode()
    command = snippet(page, "own-key").replace(PLACEHOLDER_KEY, secret)

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command + " --fail -sS"],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["limits"]["daily_budget_usd"] == "5"
    assert _shape(answer) == _shape(json.loads(snippet(page, "own-key-response")))


def test_the_docs_list_get_v1_key_among_the_routes(anonymous_client, site):
    page = anonymous_client.get("/docs/").content.decode()

    assert '<strong class="mono">/v1/key</strong>' in page
    assert 'href="#own-key"' in page


def test_the_embeddings_snippets_use_an_embedding_model(anonymous_client, site, make_model):
    make_model("embed-small", kind="embedding")

    page = anonymous_client.get("/docs/?model=gpt-5.4-mini").content.decode()

    for name in ("embeddings", "embeddings-tools"):
        assert "embed-small" in snippet(page, name)
        assert "gpt-5.4-mini" not in snippet(page, name)
    assert "Text Embedding" in snippet(page, "embeddings-tools")


def test_without_an_embedding_model_the_snippets_say_to_pick_one(anonymous_client, site):
    page = anonymous_client.get("/docs/").content.decode()

    assert FALLBACK_EMBEDDING_MODEL in snippet(page, "embeddings")


def test_the_continue_autocomplete_snippet_uses_the_legacy_completions_endpoint(
    anonymous_client, site
):
    config = snippet(anonymous_client.get("/docs/").content.decode(), "continue-autocomplete")

    assert "useLegacyCompletionsEndpoint: true" in config
    assert "roles: [autocomplete]" in config
    assert "apiBase: https://api.example.test/v1" in config


@pytest.mark.parametrize(
    ("name", "kind", "field"),
    [("embeddings", "embedding", "data"), ("completions", "chat", "choices")],
)
def test_the_documented_curl_works_against_this_server(
    live, settings, make_model, api_key, anonymous_client, name, kind, field
):
    settings.PUREBRIDGE_API_BASE_URL = live.url
    make_model("the-model", kind=kind)
    command = snippet(anonymous_client.get("/docs/").content.decode(), name)

    result = subprocess.run(
        [
            "bash",
            "-euo",
            "pipefail",
            "-c",
            command.replace(PLACEHOLDER_KEY, api_key) + " --fail -sS",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["model"] == "the-model"
    assert answer[field]


def test_the_anthropic_snippets_use_the_base_url_without_v1(anonymous_client, site):
    page = anonymous_client.get("/docs/").content.decode()

    assert 'base_url="https://api.example.test",' in snippet(page, "anthropic")
    assert 'ANTHROPIC_BASE_URL="https://api.example.test"' in snippet(page, "claude-code")
    assert '<strong class="mono">/v1/messages</strong>' in page


def test_the_documented_anthropic_sdk_sample_works_against_this_server(
    live, settings, make_model, api_key, anonymous_client
):
    settings.PUREBRIDGE_API_BASE_URL = live.url
    make_model("codex-auto-review", "fake?tokens=2")
    code = snippet(anonymous_client.get("/docs/").content.decode(), "anthropic")

    result = subprocess.run(
        [sys.executable, "-c", code.replace(PLACEHOLDER_KEY, api_key)],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "tok0 tok1 "


def test_the_docs_list_post_v1_responses_among_the_routes_linking_to_codex(anonymous_client, site):
    page = anonymous_client.get("/docs/").content.decode()

    route = re.search(
        r'<div class="route">(?:(?!<div class="route">).)*?/v1/responses<.*?</div></div>',
        page,
        re.S,
    )
    assert route, "no /v1/responses route"
    assert '<span class="method method-post">POST</span>' in route.group(0)
    for mentioned in ("Streaming supported", "previous_response_id", "store: false"):
        assert mentioned in route.group(0)
    assert 'href="#codex"' in route.group(0)
    assert '<h3 id="codex">Codex</h3>' in page
    assert 'wire_api = "responses"' in snippet(page, "codex")
