"""POST /v1/completions: legacy text completions (Continue's autocomplete
fills in the middle with `prompt` and `suffix`), through the chat hot path to
the OpenAI-compatible routes of a chat model, whole or streamed."""

from __future__ import annotations

from django.conf import settings

from gateway import limits, validate
from gateway.accounting import Usage
from gateway.auth import authenticate
from gateway.catalogue import RouteConfig, authorize, get_catalogue
from gateway.errors import InvalidRequest
from gateway.http import Request
from gateway.providers.base import UpstreamCall, UpstreamReply
from gateway.relay import relay_chunks, send_answer
from gateway.routing import open_route, routes_serving, upstream_call
from gateway.tokens import plain_input


async def create_completion(req: Request, usage: Usage) -> None:
    key = usage.key = await authenticate(req.credentials(), req.client_address())
    body = req.json()
    model_id = validate.model_id(body)
    validate.plain_input(body, "prompt")
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise InvalidRequest("'suffix' must be a string.", param="suffix")
    # best_of answers are made upstream and charged, though n are returned.
    best_of = validate.whole_number(body, "best_of", most=settings.PUREBRIDGE_MAX_CHOICES)
    choices = max(validate.choices(body), best_of or 1)
    stream, include_usage = validate.stream_flags(body)
    usage.stream = stream
    model = usage.model = authorize(await get_catalogue(), key, model_id, "chat")
    validate.output_caps(body, model, ("max_tokens",))
    model = routes_serving(model, "completions")
    await limits.admit(
        key,
        model,
        usage,
        prompt=plain_input(body["prompt"], suffix),
        body=body,
        cap_to="max_tokens",  # the legacy API's only name for it
        choices=choices,
    )
    call = upstream_call(model, body, stream, usage)
    reply, first = await open_route(model, call, usage, _attempt)
    usage.upstream_request_id = reply.request_id
    if reply.stream is None:
        await send_answer(req, usage, reply, model_id, _text_chars)
    else:
        await relay_chunks(req, usage, reply, first, model_id, include_usage, _text_chars)


async def _attempt(route: RouteConfig, call: UpstreamCall) -> UpstreamReply:
    return await route.adapter.completions(call)  # routes_serving kept only those that do


def _text_chars(choice: dict) -> int:
    text = choice.get("text")
    return len(text) if isinstance(text, str) else 0
