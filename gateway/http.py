"""The ASGI side of the /v1 surface: one request in, one response out.

Django's request machinery is left out of the hot path on purpose: it would add
a request object, a middleware chain and two thread hops (its sync signal
receivers) to every call. Console traffic still goes through Django.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import orjson
from django.conf import settings

from gateway.errors import (
    GatewayError,
    InvalidApiKey,
    InvalidRequest,
    RequestTimeout,
    RequestTooLarge,
    ServiceUnavailable,
)

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

JSON = b"application/json"
_SAFE_HEADER = frozenset(range(0x20, 0x7F))


# An error answered before the whole body was read closes the connection:
# keeping it would mean reading (and discarding) the rest first.
CLOSE = {"connection": "close"}


class _PendingBodies:
    """Bodies this worker is receiving in more than one piece right now
    (bounded by PUREBRIDGE_MAX_PENDING_BODIES)."""

    count = 0


class BodyClock:
    """The deadlines of one body read (PUREBRIDGE_BODY_IDLE_SECONDS between
    parts, PUREBRIDGE_BODY_TOTAL_SECONDS in all), watched by one timer per
    request rather than one per part, as EventStream does for upstream events:
    the timer fires when the read could first be overdue, moves itself on if a
    part came meanwhile, and otherwise cancels the reading task, which
    read_body turns into a 408."""

    __slots__ = ("task", "expired", "_loop", "_idle", "_total", "_deadline", "_last", "_timer")

    def __init__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.expired = False
        self._loop = loop = task.get_loop()
        self._idle = idle = settings.PUREBRIDGE_BODY_IDLE_SECONDS
        self._total = total = settings.PUREBRIDGE_BODY_TOTAL_SECONDS
        now = self._last = loop.time()
        self._deadline = now + total
        self._timer = loop.call_at(now + min(idle, total), self._check)

    def touch(self) -> None:
        self._last = self._loop.time()

    def _check(self) -> None:
        due = min(self._last + self._idle, self._deadline)
        if due - self._loop.time() > 0.001:  # uvloop's clock has millisecond steps
            self._timer = self._loop.call_at(due, self._check)
            return
        self.expired = True
        self.task.cancel()

    def stop(self) -> None:
        self._timer.cancel()

    def timeout(self) -> RequestTimeout:
        return RequestTimeout(
            f"The request body did not arrive in time: PureBridge waits {self._idle:g} s "
            f"for each part of it and {self._total:g} s for all of it.",
            headers=CLOSE,
        )


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"Request body is larger than the {limit}-byte limit.")


def new_request_id() -> str:
    return "pb-" + secrets.token_hex(12)


def clean_header_value(raw: bytes, limit: int = 512) -> str:
    """A client-supplied value made safe to store and to send on as a header."""
    return bytes(b for b in raw[:limit] if b in _SAFE_HEADER).decode().strip()


def client_address(scope: dict, trusted_hops: int) -> str:
    """The address of the client that sent this request: the socket's peer,
    or with `trusted_hops` proxies in front (PUREBRIDGE_TRUSTED_PROXY_HOPS)
    the address the farthest of them saw: each proxy appends its peer to
    X-Forwarded-For and the last one is the socket's peer, so the client is
    the `trusted_hops`th entry from the right. Entries left of it were sent
    by the client and prove nothing. A header too short or not an address
    there (a proxy that did not append, or a client reaching PureBridge
    without them): the socket's peer. "" when the server knows no peer (a
    Unix socket)."""
    peer = scope.get("client")
    address = peer[0] if peer else ""
    if not trusted_hops:
        return address
    # Repeated headers are one list (RFC 9110), as a proxy may add its own.
    values = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
    entries = b",".join(values).decode("latin-1").split(",") if values else []
    if len(entries) < trusted_hops:
        return address
    try:
        return str(ipaddress.ip_address(_host(entries[-trusted_hops].strip())))
    except ValueError:
        return address


def _host(entry: str) -> str:
    """An X-Forwarded-For entry without the port some proxies add
    (203.0.113.7:4711, [2001:db8::1]:4711)."""
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry


class Request:
    __slots__ = (
        "scope",
        "receive",
        "_send",
        "method",
        "path",
        "headers",
        "body",
        "request_id",
        "started",
        "received_at",
        "response_started",
        "status",
        "disconnected",
        "draining",
        "admitting",
        "extra_headers",
        "repeated_credentials",
        "error_shape",
        "_client_address",
    )

    def __init__(self, scope: dict, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self._send = send
        self.method: str = scope["method"]
        path: str = scope["path"]
        self.path = path.rstrip("/") if len(path) > 1 else path
        headers: dict[bytes, bytes] = {}
        # Credentials sent twice are ambiguous: a proxy and a client may each
        # have added one, and neither may be silently picked.
        self.repeated_credentials = False
        for name, value in scope["headers"]:
            if name in headers and name == b"authorization":
                self.repeated_credentials = True
            headers[name] = value  # ASGI servers lower-case names
        self.headers = headers
        self.body = b""
        self.request_id = new_request_id()
        self.started = time.perf_counter()
        self.received_at = datetime.now(UTC)
        self.response_started = False
        self.status = 0
        self.disconnected = False
        # While True a disconnect does not cancel the request: the stream relay
        # reads on to the upstream's final usage (bounded), then stops.
        self.draining = False
        # While True a disconnect does not cancel the request either: admission
        # is waiting for Redis, which reserves whether or not anyone waits.
        self.admitting = False
        self.extra_headers: list[tuple[bytes, bytes]] = [
            (b"x-purebridge-request-id", self.request_id.encode())
        ]
        # How this route's API writes an error, when not as OpenAI does.
        self.error_shape: Callable[[GatewayError, str], dict] | None = None
        self._client_address: str | None = None

    def client_address(self) -> str:
        """The client's address (`client_address` above), found once."""
        if self._client_address is None:
            self._client_address = client_address(
                self.scope, settings.PUREBRIDGE_TRUSTED_PROXY_HOPS
            )
        return self._client_address

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None

    def credentials(self) -> str | None:
        """The Authorization header; more than one is refused."""
        if self.repeated_credentials:
            raise InvalidApiKey(
                "More than one Authorization header was sent; send exactly one: "
                "'Authorization: Bearer <your_key>'."
            )
        return self.header(b"authorization")

    async def read_body(self) -> None:
        limit = settings.PUREBRIDGE_MAX_BODY_BYTES
        declared = self.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        clock = BodyClock()
        try:
            body, more = await self._body_part()
            if more:  # most bodies are whole in their first part
                body = await self._rest_of_body(body, limit, clock)
            elif len(body) > limit:
                raise _too_large(limit)
        except asyncio.CancelledError:
            if not clock.expired or clock.task.uncancel():
                raise
            raise clock.timeout() from None
        finally:
            clock.stop()
        self.body = body
        if settings.PUREBRIDGE_BODY_SHA256_ECHO:
            digest = hashlib.sha256(body).hexdigest().encode()
            self.extra_headers.append((b"x-purebridge-body-sha256", digest))

    async def _rest_of_body(self, first: bytes, limit: int, clock: BodyClock) -> bytes:
        """The body after its first part, when it comes in several: the path
        where slow clients are, and so where their number is bounded."""
        if _PendingBodies.count >= settings.PUREBRIDGE_MAX_PENDING_BODIES:
            raise ServiceUnavailable(
                "PureBridge is receiving too many request bodies at once; retry shortly.",
                headers={"retry-after": "1", **CLOSE},
            )
        _PendingBodies.count += 1
        clock.touch()
        chunks = [first]
        size = len(first)
        try:
            more = True
            while more:
                chunk, more = await self._body_part()
                clock.touch()
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
        finally:
            _PendingBodies.count -= 1
        return b"".join(chunks)

    async def _body_part(self) -> tuple[bytes, bool]:
        message = await self.receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
            raise asyncio.CancelledError
        return message.get("body", b""), message.get("more_body", False)

    def json(self) -> dict:
        if not self.body:
            raise InvalidRequest("The request body is empty; expected a JSON object.")
        try:
            body = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            if "UTF-8" in str(exc):
                raise InvalidRequest(
                    "The request body is not valid JSON: it must be encoded as UTF-8."
                ) from None
            raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        return body

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.response_started = True
        self.status = status
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": headers + self.extra_headers,
            }
        )

    async def send_body(self, body: bytes, more: bool = False) -> None:
        await self._send({"type": "http.response.body", "body": body, "more_body": more})

    async def send_json(
        self, status: int, payload: object, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        body = orjson.dumps(payload)
        await self.start(
            status,
            [(b"content-type", JSON), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        )
        await self.send_body(body)

    async def send_error(self, error: GatewayError) -> None:
        headers = [(k.encode(), v.encode()) for k, v in error.headers.items()]
        body = (
            error.body() if self.error_shape is None else self.error_shape(error, self.request_id)
        )
        await self.send_json(error.status, body, headers)

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)
