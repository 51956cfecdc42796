"""What every HTTP upstream adapter shares: one call with its timeouts (and no
redirects followed), the error body read, the answer read up to its size cap,
and the server-sent event stream with first-byte, idle and total deadlines.
Each provider module adds its paths, headers and quirks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import orjson
from django.conf import settings

from gateway.catalogue import ProviderConfig
from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout
from gateway.providers.base import (
    Adapter,
    ChunkStream,
    RetryableError,
    UpstreamCall,
    UpstreamReply,
)
from gateway.sse import EventTooLarge, SSEReader
from gateway.upstream import get_session

MAX_ERROR_BODY = 64 * 1024


class HTTPAdapter(Adapter):
    # Upstream response headers a client may see.
    passthrough: frozenset[bytes] = frozenset()
    request_id_header = "x-request-id"

    def __init__(self, provider: ProviderConfig) -> None:
        super().__init__(provider)
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=provider.connect_timeout, connect=provider.connect_timeout
        )

    def error(
        self, status: int, raw: bytes, retry_after: float | None, call: UpstreamCall
    ) -> GatewayError:
        raise NotImplementedError

    async def open(
        self, path: str, payload: dict, headers: dict[str, str], call: UpstreamCall
    ) -> tuple[UpstreamReply, aiohttp.ClientResponse, float]:
        """Send; return the reply skeleton and the open response (status < 400)."""
        started = time.monotonic()
        url = self.provider.base_url + path
        try:
            async with asyncio.timeout(self.provider.first_byte_timeout):
                # Never follow a redirect: its target is a server the operator
                # never configured, and on the same host the provider's
                # credentials would go along.
                response = await get_session().post(
                    url,
                    data=orjson.dumps(payload),
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
        except TimeoutError:
            raise RetryableError(UpstreamTimeout("The upstream did not answer in time.")) from None
        except aiohttp.ClientError as exc:
            raise RetryableError(
                UpstreamError(f"Could not reach the upstream ({type(exc).__name__}).")
            ) from None
        try:
            reply = UpstreamReply(
                status=response.status,
                request_id=response.headers.get(self.request_id_header, ""),
                headers=[
                    (k.lower(), v) for k, v in response.raw_headers if k.lower() in self.passthrough
                ],
            )
            if response.status >= 400:
                raw = await _read_bounded(response)
                retry_after = _retry_after(response.headers.get("retry-after"))
                error = self.error(response.status, raw, retry_after, call)
                error.upstream_status = response.status
                raise error
            if response.status >= 300:
                raise _redirected(response.status)
            if call.stream and not response.content_type.startswith("text/event-stream"):
                raise RetryableError(
                    UpstreamError("The upstream answered a stream request without a stream.")
                )
        except BaseException:
            response.close()
            raise
        return reply, response, started

    async def read_json(self, response: aiohttp.ClientResponse, started: float) -> dict:
        remaining = self.provider.total_timeout - (time.monotonic() - started)
        try:
            async with asyncio.timeout(max(remaining, 0.001)):
                raw = await _read_capped(response, settings.PUREBRIDGE_MAX_UPSTREAM_BODY_BYTES)
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
        if not isinstance(body, dict):
            raise RetryableError(UpstreamError("The upstream answer is not a JSON object."))
        return body

    def events(self, response: aiohttp.ClientResponse, started: float) -> EventStream:
        p = self.provider
        return EventStream(
            response,
            max_event=settings.PUREBRIDGE_MAX_UPSTREAM_BODY_BYTES,
            idle=p.idle_timeout,
            first_byte_deadline=started + p.first_byte_timeout,
            deadline=started + p.total_timeout,
        )


class EventStream:
    """An upstream's server-sent events, each read under its deadline.

    A stream reads many small events, so instead of an `asyncio.timeout` per
    read (a timer scheduled and cancelled every time: ~5 % of a streaming
    worker's CPU) one timer per stream watches the deadline of the read in
    progress. It is moved only when it fires early; when a read is overdue it
    fails the response's body reader with UpstreamTimeout, which the read
    raises (no task is cancelled, so nothing else can be hit by it)."""

    __slots__ = (
        "_response",
        "_reader",
        "_idle",
        "_first_byte_deadline",
        "_deadline",
        "_due",
        "_timer",
        "_timer_at",
        "_reading",
        "bytes_read",
    )

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        *,
        max_event: int,
        idle: float,
        first_byte_deadline: float,
        deadline: float,
    ) -> None:
        self._response = response
        self._reader = SSEReader(response.content.readany, max_event)
        self._idle = idle
        self._first_byte_deadline: float | None = first_byte_deadline
        self._deadline = deadline
        self._due = 0.0  # time.monotonic() by which the read in progress must end
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when the timer fires (time.monotonic())
        self._reading = False
        self.bytes_read = 0

    async def next(self) -> tuple[bytes, bytes] | None:
        """The next (event name, data), or None at the end of the body."""
        now = time.monotonic()
        if self._first_byte_deadline is not None:
            # A reasoning model may think for minutes before its first event.
            self._due = min(self._first_byte_deadline, self._deadline)
            self._first_byte_deadline = None
        else:
            self._due = min(now + self._idle, self._deadline)
        self._reading = True
        if self._timer is None or self._due < self._timer_at:
            # No timer, or one set for a later deadline (the first event's).
            self._arm(now)
        try:
            event = await self._reader.next()
        except aiohttp.ClientError:
            raise UpstreamError("The upstream connection broke mid-stream.") from None
        except EventTooLarge as exc:
            raise UpstreamError(
                f"The upstream sent a stream event larger than the {exc.limit}-byte limit."
            ) from None
        finally:
            self._reading = False
        if event is not None:
            self.bytes_read += len(event[1])
        return event

    def _arm(self, now: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = self._due
        self._timer = asyncio.get_running_loop().call_later(max(self._due - now, 0.0), self._check)

    def _check(self) -> None:
        self._timer = None
        if not self._reading:
            return  # between reads: the next read sets a timer again
        now = time.monotonic()
        if self._due - now > 0.001:  # uvloop's clock has millisecond steps
            self._arm(now)
            return
        self._response.content.set_exception(UpstreamTimeout("The upstream stopped sending."))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._response.close()


class UpstreamEvents(ChunkStream):
    """A ChunkStream over an upstream's server-sent events; each provider's
    subclass decodes them (`next`)."""

    def __init__(self, events: EventStream, redact: Callable[[str], str] = str) -> None:
        self._events = events
        self._redact = redact  # for upstream messages passed on to the client
        self._done = False

    @property
    def bytes_read(self) -> int:  # type: ignore[override]
        return self._events.bytes_read

    def close(self) -> None:
        self._events.close()


def decode_event(data: bytes) -> dict:
    try:
        decoded = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamError("The upstream sent invalid JSON in the stream.") from None
    if not isinstance(decoded, dict):
        raise UpstreamError("The upstream sent a malformed stream event.")
    return decoded


def error_detail(raw: bytes) -> dict:
    """The `error` object of an upstream error body, if it has one."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return parsed["error"]
    return {}


def str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The whole body, or a RetryableError once it passes `cap` bytes, with
    the connection closed (the rest is never read). Counted as inflated: a
    small compressed body may still be a large answer."""
    declared = response.content_length
    if declared is not None and declared > cap:
        raise _refuse_oversize(response, cap)
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.readany():
        size += len(chunk)
        if size > cap:
            raise _refuse_oversize(response, cap)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _refuse_oversize(response: aiohttp.ClientResponse, cap: int) -> RetryableError:
    response.close()  # not released to the pool: the rest of the body is unread
    return RetryableError(
        UpstreamError(f"The upstream's answer is larger than the {cap}-byte limit.")
    )


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    try:
        async with asyncio.timeout(10):
            return await response.content.read(MAX_ERROR_BODY)
    except (TimeoutError, aiohttp.ClientError):
        return b""


def _redirected(status: int) -> RetryableError:
    # The Location is left out: it may name an upstream host.
    error = RetryableError(
        UpstreamError(f"The upstream answered with a redirect (HTTP {status}), not followed.")
    )
    error.upstream_status = status
    return error


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None
