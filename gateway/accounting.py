"""What one /v1 request used and cost, gathered as it runs and recorded once."""

from __future__ import annotations

import time
from decimal import Decimal

from gateway import reported
from gateway.auth import KeyInfo
from gateway.catalogue import ModelConfig, RouteConfig
from gateway.errors import GatewayError, KeyRefused, ModelNotFound, UnknownApiKey
from gateway.http import Request, clean_header_value
from gateway.limiter import Reservation
from gateway.providers.anthropic import chat_usage
from gateway.providers.base import RetryableError
from gateway.refusals import refusals
from gateway.tokens import estimate_chars
from purebridge import metrics
from usage.pricing import cost_usd
from usage.recorder import UsageEntry, get_recorder

CLIENT_CLOSED = 499  # nginx's convention for "the client went away"


class Usage:
    __slots__ = (
        "req",
        "endpoint",
        "key",
        "model",
        "asked_model",
        "route",
        "stream",
        "prompt_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "reported",
        "replaced",
        "prompt_estimate",
        "completion_chars",
        "status",
        "error_type",
        "ttft_ms",
        "ttft_s",
        "upstream_s",
        "upstream_request_id",
        "client_request_id",
        "settled",
        "attempts",
        "reservation",
        "counted",
    )

    def __init__(self, req: Request, endpoint: str) -> None:
        self.req = req
        self.endpoint = endpoint
        self.key: KeyInfo | None = None
        self.model: ModelConfig | None = None
        self.asked_model = ""  # a model id refused as unknown (ModelNotFound)
        self.route: RouteConfig | None = None
        self.stream = False
        self.prompt_tokens = self.cached_tokens = self.cache_write_tokens = 0
        self.completion_tokens = self.reasoning_tokens = 0
        self.reported = False
        self.replaced: list[str] = []
        self.prompt_estimate = 0
        self.completion_chars = 0
        self.status = 0
        self.error_type = ""
        self.ttft_ms: int | None = None
        self.ttft_s: float | None = None
        self.upstream_s = 0.0  # spent in attempts, for the time PureBridge added
        self.upstream_request_id = ""
        raw = req.headers.get(b"x-client-request-id")
        self.client_request_id = clean_header_value(raw) if raw else ""
        self.settled = False
        self.attempts: list[dict] = []
        self.reservation: Reservation | None = None
        # Refused for want of any key, and counted instead of recorded.
        self.counted = False

    def attempt(
        self, route: RouteConfig, error: GatewayError | None, started: float, status: int = 200
    ) -> None:
        """One try of one route, kept on the usage record: the upstream's own
        status when it answered (a 500 it sent stays 500, though the client
        would get 502), else PureBridge's (a timeout: 504)."""
        code = ""
        elapsed = time.perf_counter() - started
        self.upstream_s += elapsed
        if error is not None:
            inner = error.error if isinstance(error, RetryableError) else error
            status = error.upstream_status or error.status
            code = inner.code or inner.type
        self.attempts.append(
            {
                "provider": route.provider.name,
                "upstream_model": route.upstream_model,
                "status": status,
                "error": code,
                "ms": int(elapsed * 1000),
            }
        )

    def take_usage(self, usage: object) -> object:
        """The upstream's usage object (OpenAI chat shape) as PureBridge
        believes it (gateway/reported.py); returns it as the client is sent it."""
        return self._take(usage, reported.CHAT)

    def take_responses_usage(self, usage: object) -> object:
        """The same for a Responses API usage object."""
        return self._take(usage, reported.RESPONSES)

    def take_embeddings_usage(self, usage: object) -> object:
        """The same for an embeddings usage object (a prompt count only)."""
        return self._take(usage, reported.EMBEDDINGS)

    def take_anthropic_usage(self, usage: object) -> object:
        """The same for an Anthropic usage object (/v1/messages)."""
        self._take(chat_usage(usage), reported.CHAT)
        if not self.replaced:
            return usage
        raw = dict(usage) if isinstance(usage, dict) else {}
        raw.update(
            input_tokens=self.prompt_tokens - self.cached_tokens - self.cache_write_tokens,
            output_tokens=self.completion_tokens,
            cache_read_input_tokens=self.cached_tokens,
            cache_creation_input_tokens=self.cache_write_tokens,
        )
        return raw

    def _take(self, usage: object, shape: tuple[str, str, str]) -> object:
        counts = reported.read(
            usage, shape, self.prompt_estimate, estimate_chars(self.completion_chars)
        )
        self.reported = counts.reported
        self.replaced = counts.replaced
        self.prompt_tokens = counts.prompt
        self.cached_tokens = counts.cached
        self.cache_write_tokens = counts.cache_write
        self.completion_tokens = counts.completion
        self.reasoning_tokens = counts.reasoning
        return reported.as_reported(usage, counts, shape) if counts.replaced else usage

    def first_byte(self) -> None:
        if self.ttft_s is None:
            self.ttft_s = time.perf_counter() - self.req.started
            self.ttft_ms = int(self.ttft_s * 1000)

    def fail(self, error: GatewayError) -> None:
        self.status = error.status
        self.error_type = error.recorded_as
        if isinstance(error, ModelNotFound) and self.model is None:
            self.asked_model = error.model[:128]
        if isinstance(error, KeyRefused) and self.key is None:
            self.key = error.key  # the key is good: the refusal is its own record
        elif isinstance(error, UnknownApiKey):
            address = self.req.client_address()
            self.counted = not refusals.record_in_full(address, self.req.received_at)

    def client_gone(self) -> None:
        self.status = CLIENT_CLOSED
        self.error_type = "client_disconnected"

    def settle(self) -> None:
        """Hand the record to the writer (but for a refusal of no key counted
        instead: gateway/refusals.py). Synchronous, so cancellation cannot skip it."""
        if self.settled or self.counted:
            return
        self.settled = True
        req = self.req
        latency = time.perf_counter() - req.started
        status = self.status or req.status or 200
        model = self.model.public_id if self.model else self.asked_model
        provider = self.route.provider.name if self.route else ""
        reason = self._estimate()
        cost = Decimal(0)
        if self.model is not None and (self.prompt_tokens or self.completion_tokens):
            prices = self.model.prices
            cost = cost_usd(
                input_per_mtok=prices.input,
                cached_input_per_mtok=prices.cached_input,
                output_per_mtok=prices.output,
                prompt_tokens=self.prompt_tokens,
                cached_tokens=self.cached_tokens,
                completion_tokens=self.completion_tokens,
                cache_write_per_mtok=prices.cache_write,
                cache_write_tokens=self.cache_write_tokens,
            )
        get_recorder().record(
            UsageEntry(
                created_at=req.received_at,
                request_id=req.request_id,
                endpoint=self.endpoint,
                status=status,
                account_id=self.key.account_id if self.key else None,
                api_key_id=self.key.id if self.key else None,
                model=model,
                provider=provider,
                upstream_model=self.route.upstream_model if self.route else "",
                stream=self.stream,
                prompt_tokens=self.prompt_tokens,
                cached_tokens=self.cached_tokens,
                cache_write_tokens=self.cache_write_tokens,
                completion_tokens=self.completion_tokens,
                reasoning_tokens=self.reasoning_tokens,
                estimated=bool(reason),
                estimate_reason=reason,
                cost_usd=cost,
                error_type=self.error_type,
                latency_ms=int(latency * 1000),
                ttft_ms=self.ttft_ms,
                upstream_request_id=self.upstream_request_id[:128],
                client_request_id=self.client_request_id,
                attempts=self.attempts,
                reservation=self.reservation,
            )
        )
        metrics.request_settled(
            route=self.endpoint,
            # Catalogue models only: a label per id a client made up would
            # grow the metrics without bound.
            model=self.model.public_id if self.model else "",
            provider=provider,
            status=status,
            latency=latency,
            stream=self.stream,
            first_byte=self.ttft_s,
            upstream=self.upstream_s,
            attempts=self.attempts,
        )

    def _estimate(self) -> str:
        """Fill in what the upstream did not report (or reported wrong) with
        PureBridge's own counts; the reason the record is an estimate, or ""."""
        if self.reported:
            if not self.replaced:
                return ""
            if set(self.replaced) & _COMPLETION_FIELDS:
                # Content may have followed the usage it was estimated with.
                delivered = estimate_chars(self.completion_chars)
                self.completion_tokens = max(self.completion_tokens, delivered)
            return "usage_invalid:" + ",".join(self.replaced)
        if self.route is None or not (
            self.completion_chars or self.ttft_ms is not None or self.status == CLIENT_CLOSED
        ):
            # Nothing reached the upstream, or it failed before it answered.
            return ""
        # The upstream was reached but never said what it used.
        self.prompt_tokens = self.prompt_estimate
        self.completion_tokens = estimate_chars(self.completion_chars)
        self.cached_tokens = self.cache_write_tokens = self.reasoning_tokens = 0
        if self.status == CLIENT_CLOSED:
            return "usage_missing:client_left"
        if self.status >= 400:
            return "usage_missing:upstream_failed"
        return "usage_missing"


_COMPLETION_FIELDS = frozenset(("completion_tokens", "output_tokens"))
