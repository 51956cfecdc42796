"""Answering a client: what the chat, text completions and Responses relays
share, and the whole answer and the stream of the chat completions shape
(which text completions share: only a choice's text differs)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import orjson
from django.conf import settings

from gateway.accounting import Usage
from gateway.errors import GatewayError
from gateway.http import Request
from gateway.providers.base import ChunkStream, UpstreamReply

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
DONE = b"data: [DONE]\n\n"

# The characters of one choice (of an answer, or of a stream chunk) that a
# usage estimate counts.
ChoiceChars = Callable[[dict], int]


async def send_answer(
    req: Request, usage: Usage, reply: UpstreamReply, model_id: str, chars: ChoiceChars
) -> None:
    """A whole answer with `choices` (validated by the adapter), under the public model id."""
    body = reply.body
    assert body is not None
    body["model"] = model_id
    usage.completion_chars = sum(chars(c) for c in body["choices"])
    if body.get("usage") is not None:
        body["usage"] = usage.take_usage(body["usage"])
    usage.first_byte()
    await req.send_json(200, body, reply.headers)


async def relay_chunks(
    req: Request,
    usage: Usage,
    reply: UpstreamReply,
    chunk: dict | None,
    model_id: str,
    include_usage: bool,
    chars: ChoiceChars,
) -> None:
    """Pass chunks on as they arrive; a failure after the start ends the stream
    with an error event (the OpenAI SDKs raise on it), never a silent end."""
    stream = reply.stream
    assert stream is not None
    await req.start(200, SSE_HEADERS + reply.headers)
    req.draining = settings.PUREBRIDGE_DRAIN_SECONDS > 0
    try:
        while chunk is not None:
            if req.disconnected:
                await drain(stream, usage, chunk, _take_usage)
                return
            chunk["model"] = model_id
            for choice in chunk.get("choices") or ():
                usage.completion_chars += chars(choice)
            if "usage" in chunk:
                if chunk["usage"] is not None:
                    chunk["usage"] = usage.take_usage(chunk["usage"])
                if not include_usage:
                    # The usage chunk PureBridge asked for on the client's behalf.
                    if not chunk.get("choices"):
                        chunk = await stream.next()
                        continue
                    del chunk["usage"]
            usage.first_byte()
            await req.send_body(b"data: " + orjson.dumps(chunk) + b"\n\n", more=True)
            chunk = await stream.next()
        await req.send_body(DONE)
    except GatewayError as error:
        usage.fail(error)
        await req.send_body(b"data: " + orjson.dumps(error.body()) + b"\n\n")
    finally:
        stream.close()


def _take_usage(usage: Usage, chunk: dict) -> None:
    if chunk.get("usage") is not None:
        usage.take_usage(chunk["usage"])


async def drain(
    stream: ChunkStream,
    usage: Usage,
    item: dict | None,
    take_usage: Callable[[Usage, dict], None],
) -> None:
    """The client left mid-stream: read on to the upstream's own usage, within
    PUREBRIDGE_DRAIN_BYTES (the disconnect watcher cancels the task after
    PUREBRIDGE_DRAIN_SECONDS), and charge that. If a bound is hit first, the
    record keeps an estimate of what was delivered."""
    usage.client_gone()
    limit = stream.bytes_read + settings.PUREBRIDGE_DRAIN_BYTES
    with contextlib.suppress(GatewayError):
        while item is not None:
            # The event just read is taken whatever its size: it may be the
            # one that carries the final usage.
            take_usage(usage, item)
            if stream.bytes_read > limit:
                return
            item = await stream.next()
