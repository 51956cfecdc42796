"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API
through the same hot path as chat completions.

Routes whose provider is Anthropic get the request as it came (the model
rewritten, the client's anthropic-version and anthropic-beta passed on);
every other route gets it translated to chat completions, with the answer
(and the stream, event by event) translated back. Errors are in Anthropic's
shape on these routes (gateway/messages/errors.py, set by gateway/asgi.py).
"""

from __future__ import annotations

import dataclasses

import orjson
from django.conf import settings

from gateway import limits
from gateway.accounting import Usage
from gateway.auth import authenticate
from gateway.catalogue import RouteConfig, authorize, get_catalogue
from gateway.errors import GatewayError, InvalidRequest
from gateway.http import Request
from gateway.messages.errors import anthropic_error
from gateway.messages.request import (
    check,
    check_cap,
    check_messages,
    credentials,
    forwarded_headers,
    prompt_text,
)
from gateway.messages.stream import TranslatedEvents
from gateway.messages.translate import to_chat_request, to_message
from gateway.providers.anthropic import AnthropicAdapter
from gateway.providers.base import ChunkStream, UpstreamCall, UpstreamReply
from gateway.relay import SSE_HEADERS, drain
from gateway.routing import open_route, upstream_call
from gateway.tokens import count_prompt


async def create_message(req: Request, usage: Usage) -> None:
    key = usage.key = await authenticate(credentials(req), req.client_address())
    body = req.json()
    model_id, stream = check(body)
    usage.stream = stream
    model = usage.model = authorize(await get_catalogue(), key, model_id, "chat")
    check_cap(body, model)
    await limits.admit(
        key, model, usage, prompt=prompt_text(body), body=body, cap_param="max_tokens"
    )
    call = upstream_call(model, body, stream, usage)
    call.headers = forwarded_headers(req)
    reply, first = await open_route(model, call, usage, _attempt)
    usage.upstream_request_id = reply.request_id
    if reply.stream is None:
        await _send(req, usage, reply, model_id)
    else:
        await _relay(req, usage, reply.stream, first, reply.headers, model_id)


async def count_tokens(req: Request, usage: Usage) -> None:
    """PureBridge's own count (gateway/tokens.py), whatever the model's routes:
    no upstream call, nothing charged, the same answer from every route, and
    the count admission reserves by."""
    key = usage.key = await authenticate(credentials(req), req.client_address())
    body = req.json()
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise InvalidRequest("model: Field required.", param="model")
    check_messages(body)
    usage.model = authorize(await get_catalogue(), key, model_id, "chat")
    tokens = await count_prompt(*prompt_text(body))
    await req.send_json(200, {"input_tokens": tokens})


async def _attempt(route: RouteConfig, call: UpstreamCall) -> UpstreamReply:
    adapter = route.adapter
    if isinstance(adapter, AnthropicAdapter):
        return await adapter.messages(call)
    chat = to_chat_request(call.body, call.stream)
    reply = await adapter.chat(dataclasses.replace(call, body=chat))
    if reply.stream is None:
        assert reply.body is not None
        reply.body = to_message(reply.body, call.public_model)
    else:
        reply.stream = TranslatedEvents(reply.stream, call.public_model)
    return reply


async def _send(req: Request, usage: Usage, reply: UpstreamReply, model_id: str) -> None:
    message = reply.body
    assert message is not None
    message["model"] = model_id
    usage.completion_chars = sum(_block_chars(b) for b in message["content"])
    message["usage"] = usage.take_anthropic_usage(message.get("usage"))
    usage.first_byte()
    await req.send_json(200, message, reply.headers)


def _event(event: dict) -> bytes:
    kind = event.get("type")
    name = kind.encode() if isinstance(kind, str) else b"message"
    return b"event: " + name + b"\ndata: " + orjson.dumps(event) + b"\n\n"


async def _relay(
    req: Request,
    usage: Usage,
    stream: ChunkStream,
    event: dict | None,
    headers: list[tuple[bytes, bytes]],
    model_id: str,
) -> None:
    """Pass events on as they arrive; a failure after the start ends the stream
    with an `error` event, as Anthropic's does (its SDKs raise on it)."""
    await req.start(200, SSE_HEADERS + headers)
    req.draining = settings.PUREBRIDGE_DRAIN_SECONDS > 0

    def take(usage: Usage, event: dict) -> None:
        _take_usage(stream, usage, event)

    try:
        while event is not None:
            if req.disconnected:
                await drain(stream, usage, event, take)
                return
            kind = event.get("type")
            if kind == "content_block_delta":
                usage.completion_chars += _block_chars(event.get("delta"))
            elif kind == "message_start" and isinstance(event.get("message"), dict):
                event["message"]["model"] = model_id
            elif kind == "message_delta":
                take(usage, event)
            usage.first_byte()
            await req.send_body(_event(event), more=True)
            event = await stream.next()
        await req.send_body(b"")
    except GatewayError as error:
        usage.fail(error)
        await req.send_body(_event(anthropic_error(error, req.request_id)))
    finally:
        stream.close()


def _take_usage(stream: ChunkStream, usage: Usage, event: dict) -> None:
    """At message_delta: what the stream said it used, all told (message_start's
    input and cache counts with message_delta's output)."""
    if event.get("type") != "message_delta":
        return
    counted = usage.take_anthropic_usage(getattr(stream, "usage", None))
    if usage.replaced and isinstance(counted, dict):
        given = event.get("usage")
        event["usage"] = {**(given if isinstance(given, dict) else {}), **counted}


def _block_chars(block: object) -> int:
    """Characters of a content block or delta that a usage estimate counts."""
    if not isinstance(block, dict):
        return 0
    for name in ("text", "partial_json"):
        if isinstance(block.get(name), str):
            return len(block[name])
    if block.get("type") == "tool_use":
        return len(orjson.dumps(block.get("input") or {}))
    return 0
