"""POST /v1/chat/completions: authenticate, validate, route, relay, account."""

from __future__ import annotations

import orjson
from django.conf import settings

from gateway import limits, validate
from gateway.accounting import Usage
from gateway.auth import KeyInfo, authenticate
from gateway.catalogue import Catalogue, ModelConfig, get_catalogue
from gateway.errors import GatewayError, InvalidRequest, ModelNotFound
from gateway.http import Request
from gateway.providers.base import ChunkStream, UpstreamReply
from gateway.relay import drain
from gateway.routing import open_route, upstream_call
from gateway.tokens import messages_text

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
DONE = b"data: [DONE]\n\n"
# The output cap's names in chat completions (max_tokens is the older one).
CAPS = ("max_completion_tokens", "max_tokens")


def authorize(catalogue: Catalogue, key: KeyInfo, model_id: str) -> ModelConfig:
    model = catalogue.models.get(model_id)
    if model is None or (key.allowed_models is not None and model_id not in key.allowed_models):
        raise ModelNotFound(model_id)
    return model


def _validate(body: dict) -> tuple[str, bool, bool, int]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("You must provide a model parameter.", param="model")
    validate.chat_messages(body.get("messages"))
    choices = validate.choices(body)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
    include_usage = bool(options and options.get("include_usage"))
    return model, bool(stream), include_usage, choices


async def chat_completions(req: Request, usage: Usage) -> None:
    key = usage.key = await authenticate(req.credentials(), req.client_address())
    body = req.json()
    model_id, stream, include_usage, choices = _validate(body)
    usage.stream = stream
    model = usage.model = authorize(await get_catalogue(), key, model_id)
    validate.output_caps(body, model, CAPS)
    await limits.admit(
        key,
        model,
        usage,
        prompt=messages_text(body["messages"]),
        body=body,
        choices=choices,
    )
    reply, first = await open_route(model, upstream_call(model, body, stream, usage), usage)
    usage.upstream_request_id = reply.request_id
    if reply.stream is None:
        await _send_completion(req, usage, reply, model_id)
    else:
        await _relay(req, usage, reply.stream, first, reply.headers, model_id, include_usage)


async def _send_completion(req: Request, usage: Usage, reply: UpstreamReply, model_id: str) -> None:
    body = reply.body
    assert body is not None
    body["model"] = model_id
    usage.completion_chars = sum(_choice_chars(c.get("message")) for c in body["choices"])
    if body.get("usage") is not None:
        body["usage"] = usage.take_usage(body["usage"])
    usage.first_byte()
    await req.send_json(200, body, reply.headers)


async def _relay(
    req: Request,
    usage: Usage,
    stream: ChunkStream,
    chunk: dict | None,
    headers: list[tuple[bytes, bytes]],
    model_id: str,
    include_usage: bool,
) -> None:
    """Pass chunks on as they arrive; a failure after the start ends the stream
    with an error event (the OpenAI SDKs raise on it), never a silent end."""
    await req.start(200, SSE_HEADERS + headers)
    req.draining = settings.PUREBRIDGE_DRAIN_SECONDS > 0
    try:
        while chunk is not None:
            if req.disconnected:
                await drain(stream, usage, chunk, _take_usage)
                return
            chunk["model"] = model_id
            for choice in chunk.get("choices") or ():
                usage.completion_chars += _choice_chars(choice.get("delta"))
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


def _choice_chars(part: object) -> int:
    if not isinstance(part, dict):
        return 0
    content = part.get("content")
    chars = len(content) if isinstance(content, str) else 0
    for call in part.get("tool_calls") or ():
        if isinstance(call, dict):
            chars += len(str((call.get("function") or {}).get("arguments") or ""))
    return chars
