"""The pipelined Redis connection of the request path, against a real Redis
(and, for the timeout, a loopback server that never answers)."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from purebridge.redis import sync_client
from purebridge.redis_pipe import RedisPipe, Script


@pytest.fixture
async def pipe():
    connection = RedisPipe(settings.REDIS_URL, timeout=2.0)
    yield connection
    connection.close()


async def test_concurrent_commands_get_their_own_replies(pipe) -> None:
    key = "pb:test:pipe:counter"
    await pipe.execute("DEL", key)

    replies = await asyncio.gather(*(pipe.execute("INCR", key) for _ in range(200)))

    # Sent in this order on one connection, answered in the same order.
    assert replies == list(range(1, 201))
    assert await pipe.execute("SET", "pb:test:pipe:s", "x", "EX", 10) == b"OK"
    assert await pipe.execute("GET", "pb:test:pipe:s") == b"x"
    assert await pipe.execute("MGET", "pb:test:pipe:s", "pb:test:pipe:none") == [b"x", None]


async def test_an_error_reply_fails_one_command_only(pipe) -> None:
    await pipe.execute("SET", "pb:test:pipe:text", "not a number")
    first = pipe._connection

    with pytest.raises(ResponseError, match="not an integer"):
        await pipe.execute("INCR", "pb:test:pipe:text")

    assert await pipe.execute("PING") == b"PONG"
    assert pipe._connection is first  # the same connection carries on


async def test_a_script_redis_lost_is_loaded_again(pipe) -> None:
    script = Script("return {ARGV[1], KEYS[1], 42}")
    assert await pipe.evalsha(script, ["k"], ["a"]) == [b"a", b"k", 42]

    sync_client().script_flush()

    assert await pipe.evalsha(script, ["k2"], ["b"]) == [b"b", b"k2", 42]


async def test_a_killed_connection_fails_its_commands_and_the_next_reconnects(pipe) -> None:
    client_id = await pipe.execute("CLIENT", "ID")
    waiting = asyncio.ensure_future(pipe.execute("BLPOP", "pb:test:pipe:empty", 5))
    await asyncio.sleep(0.1)

    sync_client().client_kill_filter(_id=client_id)

    with pytest.raises(ConnectionError):
        await waiting
    assert await pipe.execute("PING") == b"PONG"
    assert await pipe.execute("CLIENT", "ID") != client_id


async def test_the_database_in_the_url_is_selected() -> None:
    parts = urlsplit(settings.REDIS_URL)
    url = urlunsplit(parts._replace(path="/5"))
    connection = RedisPipe(url)
    try:
        await connection.execute("SET", "pb:test:pipe:db", "five", "EX", 10)
    finally:
        connection.close()

    assert redis.Redis.from_url(url).get("pb:test:pipe:db") == b"five"
    assert sync_client().get("pb:test:pipe:db") is None


async def test_a_server_that_does_not_answer_times_out_every_waiting_command() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = RedisPipe(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    try:
        started = time.monotonic()
        results = await asyncio.gather(
            *(connection.execute("PING") for _ in range(3)), return_exceptions=True
        )
        elapsed = time.monotonic() - started
    finally:
        connection.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()

    assert all(isinstance(r, TimeoutError) for r in results), results
    assert 0.3 <= elapsed < 1.5


async def test_nothing_listening_is_a_connection_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()

    with pytest.raises(ConnectionError, match="cannot connect"):
        await RedisPipe(f"redis://127.0.0.1:{port}/0").execute("PING")
