"""Any upstream that speaks OpenAI's API: chat completions, and the Responses
API, embeddings and text completions for the upstreams that serve them."""

from __future__ import annotations

from gateway.errors import GatewayError, RateLimited, UpstreamError, UpstreamRejected
from gateway.providers.base import RetryableError, UpstreamCall, UpstreamReply
from gateway.providers.http import (
    HTTPAdapter,
    UpstreamEvents,
    decode_event,
    error_detail,
    str_or_none,
)


class OpenAIAdapter(HTTPAdapter):
    # The upstream's request id and the openai-* timing headers.
    # openai-organization and openai-project are left out: they name the
    # operator's upstream account. The upstream's x-ratelimit-* describe
    # PureBridge's upstream quota, not the client's, so they stay too.
    passthrough = frozenset((b"x-request-id", b"openai-processing-ms", b"openai-version"))

    def headers(self, call: UpstreamCall) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.provider.api_key:
            headers["Authorization"] = f"Bearer {self.provider.api_key}"
        if call.client_request_id:
            headers["X-Client-Request-Id"] = call.client_request_id
        return headers

    serves = frozenset(("completions", "embeddings"))

    async def chat(self, call: UpstreamCall) -> UpstreamReply:
        return await self._choices("/chat/completions", call, "a chat completion")

    async def completions(self, call: UpstreamCall) -> UpstreamReply:
        """/v1/completions (legacy text completions), passed through."""
        return await self._choices("/completions", call, "a text completion")

    async def _choices(self, path: str, call: UpstreamCall, what: str) -> UpstreamReply:
        """An answer with `choices`, whole or as a stream of chunks."""
        body = dict(call.body)
        body["model"] = call.upstream_model
        if call.stream:
            # Always ask for usage; the relay drops that chunk if the client did not.
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        reply, response, started = await self.open(path, body, self.headers(call), call)
        if call.stream:
            reply.stream = OpenAIChunkStream(
                self.events(response, started), lambda text: self.redact(text, call)
            )
            return reply
        reply.body = await self.read_json(response, started)
        if not isinstance(reply.body.get("choices"), list):
            raise RetryableError(UpstreamError(f"The upstream answer is not {what}."))
        return reply

    async def embeddings(self, call: UpstreamCall) -> UpstreamReply:
        """/v1/embeddings passed through: vectors as floats or base64, untouched."""
        body = dict(call.body)
        body["model"] = call.upstream_model
        reply, response, started = await self.open("/embeddings", body, self.headers(call), call)
        reply.body = await self.read_json(response, started)
        if not isinstance(reply.body.get("data"), list):
            raise RetryableError(UpstreamError("The upstream answer is not a list of embeddings."))
        return reply

    async def responses(self, call: UpstreamCall) -> UpstreamReply:
        """/v1/responses passed through to an upstream that speaks it."""
        body = dict(call.body)
        body["model"] = call.upstream_model
        reply, response, started = await self.open("/responses", body, self.headers(call), call)
        if call.stream:
            reply.stream = ResponsesEventStream(
                self.events(response, started), lambda text: self.redact(text, call)
            )
            return reply
        reply.body = await self.read_json(response, started)
        if reply.body.get("object") != "response":
            raise RetryableError(UpstreamError("The upstream answer is not a Responses object."))
        return reply

    def error(
        self, status: int, raw: bytes, retry_after: float | None, call: UpstreamCall
    ) -> GatewayError:
        detail = error_detail(raw)
        message = self.redact(str(detail.get("message") or f"HTTP {status}"), call)
        return map_status(
            status,
            message,
            retry_after,
            type=str_or_none(detail.get("type")),
            param=str_or_none(detail.get("param")),
            code=str_or_none(detail.get("code")),
        )


def map_status(
    status: int,
    message: str,
    retry_after: float | None,
    *,
    type: str | None,
    param: str | None,
    code: str | None,
) -> GatewayError:
    """An upstream HTTP error as the client should see it, and whether another
    route may be tried (connect errors, 429, 5xx and timeouts may)."""
    if status == 429:
        headers = {"retry-after": str(max(1, round(retry_after or 1)))}
        error = RateLimited(f"The upstream is rate limiting: {message}", headers=headers)
        return RetryableError(error, retry_after=retry_after)
    if status in (401, 403):
        return RetryableError(UpstreamError("The upstream rejected PureBridge's credentials."))
    if status == 404:
        return RetryableError(UpstreamError("The upstream does not serve this model."))
    if status == 408 or status >= 500:
        return RetryableError(UpstreamError(f"The upstream failed (HTTP {status}): {message}"))
    return UpstreamRejected(status, message, type=type, param=param, code=code)


class OpenAIChunkStream(UpstreamEvents):
    async def next(self) -> dict | None:
        if self._done:
            return None
        event = await self._events.next()
        if event is None:
            raise UpstreamError("The upstream stream ended before it was complete.")
        if event[1] == b"[DONE]":
            self._done = True
            self.close()
            return None
        chunk = decode_event(event[1])
        if "error" in chunk and not chunk.get("choices"):
            # An error event, before the first chunk or mid-stream.
            raise UpstreamError(f"The upstream failed: {self._redact(error_message(chunk))}")
        return chunk


def error_message(event: dict) -> str:
    """The message of an error event, nested ({"error": {...}}) or flat."""
    error = event.get("error")
    detail = error if isinstance(error, dict) else event
    return str(detail.get("message") or "unknown error")


TERMINAL_EVENTS = frozenset(("response.completed", "response.incomplete", "response.failed"))


class ResponsesEventStream(UpstreamEvents):
    """A Responses API event stream; it ends after its terminal event."""

    async def next(self) -> dict | None:
        if self._done:
            return None
        event = await self._events.next()
        if event is None or event[1] == b"[DONE]":
            raise UpstreamError("The upstream stream ended before the response was complete.")
        decoded = decode_event(event[1])
        if decoded.get("type") == "error":
            raise UpstreamError(f"The upstream failed: {self._redact(error_message(decoded))}")
        if decoded.get("type") in TERMINAL_EVENTS:
            self._done = True
        return decoded
