"""A lean, pipelined Redis connection for the commands on the request path.

redis-py's asyncio client spends 110–200 µs of CPU on every command
(connection pool and its locks, a timeout per read and per write, retries,
observability hooks), measured here against 28 µs for the same PING written
on a socket and parsed by hiredis. Admission makes one EVALSHA on every
request of a key with limits, so that overhead was most of admission's cost.

This does only what the request path needs: one connection per event loop,
each command written as it comes, replies matched in order (Redis answers a
connection's commands in the order it received them) and parsed by hiredis's
C reader. Many requests in flight share the connection without waiting for
each other. The first command of a turn of the event loop is written at once;
the others of that turn go out together at its end (a write to a socket is a
system call: under load, one per command was the largest part of admission's
CPU). Everything else (pub/sub, the console, the usage writer) keeps
using redis-py (purebridge/redis.py).

Failures are redis-py's exceptions, so callers handle both alike: a reply
Redis marks as an error is a ResponseError and leaves the connection usable;
a connection that breaks, or a reply that does not come within `timeout`
seconds, fails every command waiting on that connection (ConnectionError,
TimeoutError) and closes it (a late reply would be matched to the wrong
command); the next command opens a new connection. A reply that came in time
but that a busy event loop has not read yet is not late: the timeout is
Redis's, not the loop's, so it can be short (REDIS_TIMEOUT).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import select
import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit

import hiredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = str | bytes | int


def _pack(args: Sequence[Arg]) -> bytes:
    # hiredis's stub types its argument as a 1-tuple; it takes any length.
    return hiredis.pack_command(tuple(args))  # type: ignore[arg-type]


class Script:
    """A Lua script run by its SHA1, loaded on first use (or after Redis lost it)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.reader = hiredis.Reader(replyError=ResponseError)
        # The commands sent and not answered yet, oldest first: (reply, sent at).
        self.waiting: collections.deque[tuple[asyncio.Future, float]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.broken: Exception | None = None
        self.watchdog: asyncio.TimerHandle | None = None
        # None: nothing written in this turn of the event loop yet, so the next
        # command goes out at once; else the commands to write at its end.
        self.outgoing: list[bytes] | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            if not self.waiting:
                self._fail(RedisConnectionError("Redis sent a reply nobody asked for"))
                return
            future, _ = self.waiting.popleft()
            if future.done():  # the caller was cancelled
                continue
            if isinstance(reply, ResponseError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"Redis closed the connection: {exc or 'end of stream'}"))

    # -- commands

    def send(self, packed: bytes) -> asyncio.Future:
        if self.broken is not None:
            raise self.broken
        future = self.loop.create_future()
        self.waiting.append((future, self.loop.time()))
        if self.outgoing is None:
            assert self.transport is not None
            self.transport.write(packed)  # alone in its turn: no reason to wait
            self.outgoing = []
            self.loop.call_soon(self._flush)
        else:
            self.outgoing.append(packed)
        if self.watchdog is None:
            self.watchdog = self.loop.call_at(self.loop.time() + self.timeout, self._check)
        return future

    def push(self) -> None:
        """Write what this turn has queued now, not at the turn's end."""
        if self.outgoing and self.broken is None and self.transport is not None:
            self.transport.write(b"".join(self.outgoing))
            self.outgoing = []

    def _flush(self) -> None:
        outgoing, self.outgoing = self.outgoing, None
        if outgoing and self.broken is None and self.transport is not None:
            self.transport.write(b"".join(outgoing))

    def _check(self) -> None:
        """One timer per connection, not one per command: it fires when the
        oldest command could be due and fails the connection if it is."""
        self.watchdog = None
        if not self.waiting or self.broken is not None:
            return
        due = self.waiting[0][1] + self.timeout
        if due > self.loop.time():
            self.watchdog = self.loop.call_at(due, self._check)
        elif self._answer_waiting():
            # Redis answered; a busy event loop has not read it yet (uvloop
            # runs due timers before it reads sockets). Read first, then see.
            self.watchdog = self.loop.call_later(0, self._check)
        else:
            self._fail(RedisTimeoutError(f"Redis did not answer within {self.timeout:g}s"))

    def _answer_waiting(self) -> bool:
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(readable)

    def _fail(self, exc: Exception) -> None:
        if self.broken is None:
            self.broken = exc
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        if self.transport is not None:
            # abort, not close: a Redis that stopped reading would keep a
            # closing socket (and its unsent commands) open for minutes.
            self.transport.abort()

    def close(self) -> None:
        self._fail(RedisConnectionError("connection closed"))


class RedisPipe:
    """One pipelined connection to the Redis at `url`, for one event loop."""

    def __init__(self, url: str, *, timeout: float = 5.0, connect_timeout: float = 2.0) -> None:
        self.options = parse_url(url)
        self.tls = urlsplit(url).scheme == "rediss"
        if self.tls:
            tls_context(self.options)  # a URL this cannot honour fails here, at start
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._connection: _Connection | None = None
        # The connection being opened: every command waiting for one awaits
        # this same attempt, so a Redis that does not answer costs each of
        # them one connect timeout, not one per command queued before it.
        self._connecting: asyncio.Task | None = None

    async def execute(self, *args: Arg):
        """Send one command and return its reply (hiredis types: bytes, int, list)."""
        connection = self._connection
        if connection is None or connection.broken is not None:
            connection = await self._connect()
        return await connection.send(_pack(args))

    def submit(self, *args: Arg) -> asyncio.Future:
        """Send one command now, without waiting for its reply: on a connection
        that is up its bytes are written before this returns, so whatever the
        caller sends elsewhere next goes out after it. (Otherwise it is sent
        as soon as a connection is.)"""
        connection = self._connection
        if connection is None or connection.broken is not None:
            return asyncio.ensure_future(self.execute(*args))
        future = connection.send(_pack(args))
        connection.push()
        return future

    async def evalsha(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]):
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            # Redis restarted or flushed its scripts: EVAL runs and caches it.
            return await self.execute("EVAL", script.source, len(keys), *keys, *args)

    async def execute_idempotent(self, *args: Arg):
        """execute() for a command that may run twice (SET, GET): one more try
        on a new connection when the first one broke under it (a Redis
        restart, an idle connection dropped by the network)."""
        try:
            return await self.execute(*args)
        except RedisConnectionError:
            return await self.execute(*args)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _connect(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open_and_greet())
            self._connecting.add_done_callback(self._connected)
        # Shielded: a caller that is cancelled does not cancel the others' attempt.
        return await asyncio.shield(self._connecting)

    def _connected(self, attempt: asyncio.Task) -> None:
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._connection = attempt.result()

    async def _open_and_greet(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                connection = await self._open(loop)
                try:
                    await self._hello(connection)
                except BaseException:
                    connection.close()
                    raise
        except TimeoutError as exc:  # asyncio's (the builtin)
            raise RedisTimeoutError("connecting to Redis timed out") from exc
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
        return connection

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        def factory() -> _Connection:
            return _Connection(loop, self.timeout)

        options = self.options
        if "path" in options:
            _, protocol = await loop.create_unix_connection(factory, options["path"])
        else:
            _, protocol = await loop.create_connection(
                factory,
                options.get("host", "localhost"),
                options.get("port", 6379),
                ssl=tls_context(options) if self.tls else None,
            )
        return protocol

    async def _hello(self, connection: _Connection) -> None:
        """Authenticate and select the database, as the URL says."""
        options = self.options
        if options.get("password"):
            credentials = [options["password"]]
            if options.get("username"):
                credentials.insert(0, options["username"])
            await connection.send(_pack(("AUTH", *credentials)))
        if options.get("db"):
            await connection.send(_pack(("SELECT", int(options["db"]))))


def tls_context(options: dict) -> ssl.SSLContext:
    """The TLS settings a rediss:// URL gives redis-py, applied the same way
    (ssl_cert_reqs, ssl_ca_certs, ssl_ca_path, ssl_ca_data,
    ssl_check_hostname, ssl_certfile, ssl_keyfile, ssl_password,
    ssl_min_version, ssl_ciphers): certificates are verified unless the URL
    says otherwise. An option this does not know is refused (checked when the
    web process starts) rather than failing every admission later."""
    unknown = {name for name in options if name.startswith("ssl_")} - TLS_OPTIONS
    if unknown:
        raise ValueError(f"REDIS_URL: TLS options not supported: {', '.join(sorted(unknown))}")
    context = ssl.create_default_context(
        cafile=options.get("ssl_ca_certs"),
        capath=options.get("ssl_ca_path"),
        cadata=options.get("ssl_ca_data"),
    )
    required = options.get("ssl_cert_reqs", "required")
    if required in ("none", ssl.CERT_NONE):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif required in ("optional", ssl.CERT_OPTIONAL):
        context.verify_mode = ssl.CERT_OPTIONAL
    if options.get("ssl_check_hostname") is False:
        context.check_hostname = False
    if options.get("ssl_certfile"):
        context.load_cert_chain(
            options["ssl_certfile"], options.get("ssl_keyfile"), options.get("ssl_password")
        )
    if options.get("ssl_min_version"):
        # redis-py reads it as the number of an ssl.TLSVersion (771: TLS 1.2).
        context.minimum_version = ssl.TLSVersion(int(options["ssl_min_version"]))
    if options.get("ssl_ciphers"):
        context.set_ciphers(options["ssl_ciphers"])
    return context


TLS_OPTIONS = frozenset(
    (
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_ca_data",
        "ssl_check_hostname",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_password",
        "ssl_min_version",
        "ssl_ciphers",
    )
)
