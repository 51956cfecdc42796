"""What a phase asks: one kind of request, as sent to PureBridge or to the fake directly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SYSTEM = "You are a helpful assistant."
USER = "Say hello from the PureBridge benchmark."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
# The same request in the Responses API's words.
RESPONSES_INPUT = {"instructions": SYSTEM, "input": USER}
# And in the Messages API's (which requires max_tokens).
MESSAGES_INPUT = {
    "system": SYSTEM,
    "messages": [{"role": "user", "content": USER}],
    "max_tokens": 256,
}

# An embeddings request as the OpenAI SDK sends it by default (base64), for
# vectors of text-embedding-3-small's size.
EMBEDDINGS_INPUT = {"input": USER, "encoding_format": "base64", "dimensions": 1536}

# Per API the client speaks: its path under /v1, and the request body for a model.
APIS: dict[str, tuple[str, Callable[[str], dict]]] = {
    "chat": ("chat/completions", lambda model: {"model": model, "messages": MESSAGES}),
    "responses": ("responses", lambda model: {"model": model, **RESPONSES_INPUT}),
    "embeddings": ("embeddings", lambda model: {"model": model, **EMBEDDINGS_INPUT}),
    "messages": ("messages", lambda model: {"model": model, **MESSAGES_INPUT}),
}
# APIs every OpenAI-compatible upstream is sent as the client sent them (the
# model renamed): directly, the fake is asked the same.
PASSED_THROUGH = frozenset(("embeddings",))


@dataclass(frozen=True)
class Ask:
    """One kind of request in a phase: a public model asked through one API
    with one key. Against the fake directly it becomes what PureBridge sends
    the upstream (a translated request: chat completions)."""

    label: str
    model: str  # public model id, a key of some phase's MODELS
    api: str = "chat"  # a key of APIS, as the client asks PureBridge
    # A key of seed.KEYS (or of the phase's own keys); None: "limited" with
    # --limited-key, else "plain"; RANDOM_KEY: a new well-formed key that no
    # key has, made up by the load generator for every request.
    key: str | None = None
    # The status that counts as answered (401 for made-up keys).
    expect_status: int = 200
    # Through the gateway: a second gateway of the phase's own on this port
    # (phases/metrics.py); None: the run's.
    port: int | None = None


RANDOM_KEY = "random"
# A made-up key: PureBridge's prefix and 48 letters or digits (keys/services.py).
RANDOM_KEY_PREFIX, RANDOM_KEY_LENGTH = "sk-pb-", 48


@dataclass(frozen=True)
class Background:
    """Requests made alongside a phase's own (not streamed), `concurrency` at a
    time, by a load generator of their own: another client's, not sharing the
    measured one's event loop."""

    asks: list[Ask]
    concurrency: int
    requests: int


def loadgen_variant(ask: Ask, base: str, model: str, secret: str, api: str, stream: bool) -> dict:
    """One of a phase's `variants`, as benchmarks/loadgen.py takes them."""
    path, body = APIS[api]
    request = body(model)
    if stream:
        request["stream"] = True
    auth = (
        {"x-api-key": secret, "anthropic-version": "2023-06-01"}
        if api == "messages"  # as Anthropic's SDKs send it
        else {"Authorization": f"Bearer {secret}"}
    )
    variant = {
        "label": ask.label,
        "url": f"{base}/{path}",
        "headers": {**auth, "Content-Type": "application/json"},
        "body": request,
        "format": api,
        "expect_status": ask.expect_status,
    }
    if ask.key == RANDOM_KEY:
        variant["random_key"] = {"prefix": RANDOM_KEY_PREFIX, "length": RANDOM_KEY_LENGTH}
    return variant
