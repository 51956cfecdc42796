"""Request bodies that arrive slowly, or stop arriving, do not hold a worker:
each is answered 408 (and its connection closed) at its deadline, and past
PUREBRIDGE_MAX_PENDING_BODIES a new one is refused at once with 503."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import httpx2
import orjson
import pytest

from tests.helpers import chat_body
from tests.limits.support import gunicorn_in

IDLE = 0.5
TOTAL = 1.5


@pytest.fixture(autouse=True)
def _short_deadlines(settings):
    settings.PUREBRIDGE_BODY_IDLE_SECONDS = IDLE
    settings.PUREBRIDGE_BODY_TOTAL_SECONDS = TOTAL


async def slow_post(
    port: int, key: str, *, first: bytes, drip: float | None
) -> tuple[bytes, float]:
    """POST a chat whose body promises 1,000 bytes, sends `first`, then one
    more byte every `drip` seconds (never, if None) until the server answers
    and closes. What it answered, and after how many seconds."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    with socket.socket() as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(
            sock,
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + key.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + first,
        )
        dripping = asyncio.create_task(_drip(sock, drip)) if drip else None
        try:
            async with asyncio.timeout(20):
                answer = await _read_to_close(sock)
        finally:
            if dripping is not None:
                dripping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await dripping
    return answer, time.monotonic() - started


async def _drip(sock: socket.socket, every: float) -> None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(ConnectionError):  # the server hung up
        while True:
            await asyncio.sleep(every)
            await loop.sock_sendall(sock, b" ")


async def _read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sent before it closed. A byte of ours it left
    unread makes the close a reset, which arrives after what it sent (asyncio's
    StreamReader would drop the answer for the reset: hence a raw socket)."""
    loop = asyncio.get_running_loop()
    answer = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await loop.sock_recv(sock, 65536):
            answer += chunk
    return answer


async def normal_chat(url: str, key: str, after: float) -> httpx2.Response:
    await asyncio.sleep(after)
    async with httpx2.AsyncClient(base_url=url, timeout=10) as client:
        return await client.post(
            "/v1/chat/completions",
            content=orjson.dumps(chat_body()),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )


def error_of(answer: bytes, status: int) -> dict:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), answer[:200]
    assert b"\r\nconnection: close" in head.lower()
    assert b"x-purebridge-request-id: pb-" in head.lower()
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_trickling_bodies_get_408_at_the_total_deadline_while_others_are_served(
    live, api_key, make_model
):
    make_model()

    async def run():
        slow = [slow_post(live.port, api_key, first=b"{", drip=IDLE / 3) for _ in range(100)]
        return await asyncio.gather(normal_chat(live.url, api_key, after=IDLE), *slow)

    normal, *slow = asyncio.run(run())

    assert normal.status_code == 200
    for answer, seconds in slow:
        error = error_of(answer, 408)
        assert (error["type"], error["code"]) == ("invalid_request_error", "request_timeout")
        assert TOTAL <= seconds < TOTAL + 2


@pytest.mark.parametrize("first", [b"", b"{"], ids=["headers-only", "one-byte"])
def test_a_body_that_stops_arriving_gets_408_at_the_idle_deadline(
    live, api_key, make_model, settings, first
):
    settings.PUREBRIDGE_BODY_TOTAL_SECONDS = 60
    make_model()

    answer, seconds = asyncio.run(slow_post(live.port, api_key, first=first, drip=None))

    assert error_of(answer, 408)["code"] == "request_timeout"
    assert IDLE <= seconds < IDLE + 2


def test_past_the_pending_body_cap_a_new_slow_body_gets_503_at_once(
    live, api_key, make_model, settings
):
    settings.PUREBRIDGE_MAX_PENDING_BODIES = 3
    make_model()

    async def run():
        held = [
            asyncio.create_task(slow_post(live.port, api_key, first=b"{", drip=IDLE / 3))
            for _ in range(3)
        ]
        await asyncio.sleep(IDLE / 2)  # all three are waiting for the rest of their bodies
        refused = await slow_post(live.port, api_key, first=b"{", drip=IDLE / 3)
        normal = await normal_chat(live.url, api_key, after=0)
        return refused, normal, await asyncio.gather(*held)

    (answer, seconds), normal, held = asyncio.run(run())

    error = error_of(answer, 503)
    assert (error["type"], error["code"]) == ("service_unavailable", "service_unavailable")
    assert b"\r\nretry-after: 1\r\n" in answer.lower()
    assert seconds < IDLE
    assert normal.status_code == 200  # a body that arrives whole is never refused
    assert [error_of(a, 408)["code"] for a, _ in held] == ["request_timeout"] * 3


def test_under_gunicorn_a_hundred_trickling_bodies_and_silent_ones_all_get_408(
    api_key, make_model, tmp_path_factory
):
    """The production shape: uvicorn workers on uvloop, settings from the environment."""
    make_model()
    env = {"PUREBRIDGE_BODY_IDLE_SECONDS": str(IDLE), "PUREBRIDGE_BODY_TOTAL_SECONDS": str(TOTAL)}

    async def run(port: int, url: str):
        trickling = [slow_post(port, api_key, first=b"{", drip=IDLE / 3) for _ in range(100)]
        silent = [slow_post(port, api_key, first=b"", drip=None) for _ in range(20)]
        return await asyncio.gather(normal_chat(url, api_key, after=IDLE), *trickling, *silent)

    with gunicorn_in(tmp_path_factory, "slow-bodies", env=env) as server:
        normal, *slow = asyncio.run(run(server.port, server.url))

    assert normal.status_code == 200
    for answer, seconds in slow:
        assert error_of(answer, 408)["code"] == "request_timeout"
        assert seconds < TOTAL + 2
