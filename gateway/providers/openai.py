"""Any upstream that speaks OpenAI's chat completions API."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson

from gateway.errors import (
    GatewayError,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from gateway.providers.base import Adapter, ChunkStream, RetryableError, UpstreamCall, UpstreamReply
from gateway.sse import SSEReader
from gateway.upstream import get_session

# Upstream headers a client may see: the upstream's request id and the
# openai-* timing headers. openai-organization and openai-project are left out:
# they name the operator's upstream account. The upstream's x-ratelimit-*
# describe PureBridge's upstream quota, not the client's, so they stay too.
PASSTHROUGH = frozenset((b"x-request-id", b"openai-processing-ms", b"openai-version"))
MAX_ERROR_BODY = 64 * 1024


class OpenAIAdapter(Adapter):
    def __init__(self, provider) -> None:
        super().__init__(provider)
        self._url = f"{provider.base_url}/chat/completions"
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=provider.connect_timeout, connect=provider.connect_timeout
        )
        self._auth = f"Bearer {provider.api_key}" if provider.api_key else ""

    async def chat(self, call: UpstreamCall) -> UpstreamReply:
        body = dict(call.body)
        body["model"] = call.upstream_model
        if call.stream:
            # Always ask for usage; the relay drops that chunk if the client did not.
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        headers = {"Content-Type": "application/json"}
        if self._auth:
            headers["Authorization"] = self._auth
        if call.client_request_id:
            headers["X-Client-Request-Id"] = call.client_request_id
        started = time.monotonic()
        response = await self._send(orjson.dumps(body), headers)
        try:
            reply = UpstreamReply(
                status=response.status,
                request_id=response.headers.get("x-request-id", ""),
                headers=[
                    (k.lower(), v) for k, v in response.raw_headers if k.lower() in PASSTHROUGH
                ],
            )
            if response.status >= 400:
                raise self._error(response.status, await _read_bounded(response), response, call)
            if call.stream:
                if not response.content_type.startswith("text/event-stream"):
                    raise RetryableError(
                        UpstreamError("The upstream answered a stream request without a stream.")
                    )
                reply.stream = OpenAIChunkStream(
                    response,
                    idle=self.provider.idle_timeout,
                    first_byte_deadline=started + self.provider.first_byte_timeout,
                    deadline=started + self.provider.total_timeout,
                )
                return reply
            reply.body = await self._json_body(response, started)
            return reply
        except BaseException:
            response.close()
            raise

    async def _send(self, payload: bytes, headers: dict[str, str]) -> aiohttp.ClientResponse:
        try:
            async with asyncio.timeout(self.provider.first_byte_timeout):
                return await get_session().post(
                    self._url, data=payload, headers=headers, timeout=self._timeout
                )
        except TimeoutError:
            raise RetryableError(UpstreamTimeout("The upstream did not answer in time.")) from None
        except aiohttp.ClientError as exc:
            raise RetryableError(
                UpstreamError(f"Could not reach the upstream ({type(exc).__name__}).")
            ) from None

    async def _json_body(self, response: aiohttp.ClientResponse, started: float) -> dict:
        remaining = self.provider.total_timeout - (time.monotonic() - started)
        try:
            async with asyncio.timeout(max(remaining, 0.001)):
                raw = await response.read()
        except TimeoutError:
            raise RetryableError(UpstreamTimeout("The upstream did not finish in time.")) from None
        except aiohttp.ClientError:
            raise RetryableError(UpstreamError("The upstream closed the connection.")) from None
        finally:
            response.release()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise RetryableError(
                UpstreamError("The upstream answered with invalid JSON.")
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
            raise RetryableError(UpstreamError("The upstream answer is not a chat completion."))
        return body

    def _error(
        self, status: int, raw: bytes, response: aiohttp.ClientResponse, call: UpstreamCall
    ) -> GatewayError:
        detail: dict = {}
        try:
            parsed = orjson.loads(raw)
            if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
                detail = parsed["error"]
        except orjson.JSONDecodeError:
            pass
        message = self.redact(str(detail.get("message") or f"HTTP {status}"), call)
        if status == 429:
            retry_after = _retry_after(response.headers.get("retry-after"))
            headers = {"retry-after": str(max(1, round(retry_after or 1)))}
            error = RateLimited(f"The upstream is rate limiting: {message}", headers=headers)
            return RetryableError(error, retry_after=retry_after)
        if status in (401, 403):
            return RetryableError(UpstreamError("The upstream rejected PureBridge's credentials."))
        if status == 404:
            return RetryableError(UpstreamError("The upstream does not serve this model."))
        if status == 408 or status >= 500:
            return RetryableError(UpstreamError(f"The upstream failed (HTTP {status}): {message}"))
        return UpstreamRejected(
            status,
            message,
            type=_str_or_none(detail.get("type")),
            param=_str_or_none(detail.get("param")),
            code=_str_or_none(detail.get("code")),
        )


class OpenAIChunkStream(ChunkStream):
    __slots__ = ("_response", "_reader", "_idle", "_first_byte_deadline", "_deadline", "_done")

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        *,
        idle: float,
        first_byte_deadline: float,
        deadline: float,
    ) -> None:
        self._response = response
        self._reader = SSEReader(response.content.readany)
        self._idle = idle
        self._first_byte_deadline: float | None = first_byte_deadline
        self._deadline = deadline
        self._done = False

    async def next(self) -> dict | None:
        if self._done:
            return None
        now = time.monotonic()
        if self._first_byte_deadline is not None:
            # A reasoning model may think for minutes before its first chunk.
            timeout = min(self._first_byte_deadline, self._deadline) - now
            self._first_byte_deadline = None
        else:
            timeout = min(self._idle, self._deadline - now)
        try:
            async with asyncio.timeout(max(timeout, 0.001)):
                event = await self._reader.next()
        except TimeoutError:
            raise UpstreamTimeout("The upstream stopped sending.") from None
        except aiohttp.ClientError:
            raise UpstreamError("The upstream connection broke mid-stream.") from None
        if event is None:
            raise UpstreamError("The upstream stream ended before it was complete.")
        data = event[1]
        if data == b"[DONE]":
            self._done = True
            self.close()
            return None
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError("The upstream sent invalid JSON in the stream.") from None
        if not isinstance(chunk, dict):
            raise UpstreamError("The upstream sent a malformed stream chunk.")
        return chunk

    def close(self) -> None:
        self._response.close()


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    try:
        async with asyncio.timeout(10):
            return await response.content.read(MAX_ERROR_BODY)
    except (TimeoutError, aiohttp.ClientError):
        return b""


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
