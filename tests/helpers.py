"""Small helpers shared by the tests: requests to the live server and SSE parsing."""

from __future__ import annotations

import secrets
import socket
import string
import time
from collections.abc import Callable

import httpx2
import orjson

USER_HI = [{"role": "user", "content": "hi"}]


def chat_body(model: str = "test-model", **fields) -> dict:
    return {"model": model, "messages": USER_HI, **fields}


def post_chat(
    http: httpx2.Client, key: str | None, body: dict | bytes, headers: dict | None = None
) -> httpx2.Response:
    """POST /v1/chat/completions with a Bearer key; `body` bytes are sent as they are."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        all_headers["Authorization"] = f"Bearer {key}"
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return http.post("/v1/chat/completions", content=content, headers=all_headers)


def sse_data(text: str) -> list[str]:
    """The `data` payload of every server-sent event, in order."""
    events = []
    for raw in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line[5:].lstrip(" ") for line in raw.split("\n") if line.startswith("data:")]
        if lines:
            events.append("\n".join(lines))
    return events


def sse_chunks(text: str) -> list[dict]:
    """The JSON events of a stream (everything but `[DONE]`)."""
    return [orjson.loads(data) for data in sse_data(text) if data != "[DONE]"]


def stream_content(chunks: list[dict]) -> str:
    return "".join(
        choice.get("delta", {}).get("content") or ""
        for chunk in chunks
        for choice in chunk.get("choices", [])
    )


def read_events_then_hang_up(
    port: int, key: str, body: dict, events: int, path: str = "/v1/chat/completions"
) -> bytes:
    """Start a streamed request (a chat by default) over a raw socket, read
    `events` SSE events, then close."""
    payload = orjson.dumps(body)
    request = (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
    )
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        while received.count(b"data: ") < events:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the stream early"
            received += chunk
    return received


def wait_for(condition: Callable[[], object], timeout: float = 3.0) -> object:
    """Poll until `condition()` is truthy; its value, or the last one after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def database_url_for_tests() -> str:
    """DATABASE_URL of the test database, for processes the tests start."""
    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def celery_worker_command(hostname: str, pool: str = "solo") -> list[str]:
    """A real `celery -A purebridge worker`, one task at a time, quiet on the
    broker; pool "solo" (one process) or "prefork" (a parent and one pool process)."""
    import sys
    from pathlib import Path

    return [
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "purebridge",
        "worker",
        "--pool",
        pool,
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--hostname",
        f"{hostname}@%h",
    ]


def usage_entry(key, request_id: str, **fields):
    """A usage record as the hot path hands it to the writer: a 200 of `key`
    now, with `fields` set or overridden."""
    from django.utils import timezone

    from usage.recorder import UsageEntry

    return UsageEntry(
        **{
            "created_at": timezone.now(),
            "request_id": request_id,
            "endpoint": "chat.completions",
            "status": 200,
            "account_id": key.account_id,
            "api_key_id": key.id,
            **fields,
        }
    )


def made_up_key() -> str:
    """A well-formed PureBridge key that no key has: a new lookup every time."""
    alphabet = string.ascii_letters + string.digits
    return "sk-pb-" + "".join(secrets.choice(alphabet) for _ in range(48))
