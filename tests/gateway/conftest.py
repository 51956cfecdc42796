"""Fixtures of the /v1/messages tests: the real `anthropic` SDK pointed at the
live server, and a public model on each kind of route."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest


@pytest.fixture
def anthropic_client(live, api_key) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=live.url, api_key=api_key, max_retries=0, timeout=20) as c:
        yield c


@pytest.fixture
def claude_route(make_model, make_provider):
    """A public model `claude` served by the fake's Anthropic API."""

    def make(*upstream_models: str, **prices):
        provider = make_provider("fake-anthropic", kind="anthropic", api_key="anthropic-key")
        return make_model("claude", *(upstream_models or ("fake",)), provider=provider, **prices)

    return make


@pytest.fixture
def gpt_route(make_model):
    """A public model `gpt` served by the fake's chat completions API."""

    def make(*upstream_models: str, **prices):
        return make_model("gpt", *(upstream_models or ("fake",)), **prices)

    return make
