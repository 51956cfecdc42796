"""What every provider adapter offers the hot path.

An adapter turns one chat request into one upstream call and hands back either
the decoded JSON body or a stream of decoded chunks, always in the OpenAI chat
completions shape. Provider quirks stay in the adapter's module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from gateway.catalogue import ProviderConfig
from gateway.errors import GatewayError


class RetryableError(GatewayError):
    """Raised before any byte reached the client: another route may be tried.

    Wraps the error the client gets if no route succeeds.
    """

    def __init__(self, error: GatewayError, *, retry_after: float | None = None) -> None:
        super().__init__(error.message, status=error.status, headers=error.headers)
        self.error = error
        self.retry_after = retry_after


@dataclass(slots=True)
class UpstreamCall:
    body: dict
    upstream_model: str
    public_model: str
    stream: bool
    client_request_id: str = ""
    # The output cap admission reserved for when the request sets none (the
    # model's default): what an upstream that requires a cap is sent.
    default_max_output_tokens: int = 4096
    # Client headers an upstream of the same API is sent on (anthropic-version).
    headers: tuple[tuple[str, str], ...] = ()


class ChunkStream(ABC):
    """Decoded chunks of a streamed answer; `next()` returns None at the end."""

    bytes_read = 0  # of the upstream's stream, for bounding a drain

    @abstractmethod
    async def next(self) -> dict | None: ...

    @abstractmethod
    def close(self) -> None: ...


@dataclass(slots=True)
class UpstreamReply:
    status: int
    request_id: str = ""
    # Upstream headers that are passed on to the client.
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: dict | None = None
    stream: ChunkStream | None = None


class Adapter(ABC):
    # The OpenAI endpoints beyond chat completions this upstream serves
    # (gateway.routing.routes_serving keeps only such routes for them).
    serves: frozenset[str] = frozenset()

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider

    @abstractmethod
    async def chat(self, call: UpstreamCall) -> UpstreamReply: ...

    async def completions(self, call: UpstreamCall) -> UpstreamReply:
        """/v1/completions, for an adapter that `serves` it."""
        raise NotImplementedError

    async def embeddings(self, call: UpstreamCall) -> UpstreamReply:
        """/v1/embeddings, for an adapter that `serves` it."""
        raise NotImplementedError

    def redact(self, text: str, call: UpstreamCall) -> str:
        return redact(text, self.provider, call.upstream_model, call.public_model)


def redact(text: str, provider: ProviderConfig, upstream_model: str, public_model: str) -> str:
    """An upstream message fit for the client: no secrets, no upstream URL,
    the public model id in place of the upstream one."""
    for secret in (provider.api_key, provider.base_url):
        if secret:
            text = text.replace(secret, "[redacted]")
    if upstream_model and upstream_model != public_model:
        text = text.replace(upstream_model, public_model)
    return text
