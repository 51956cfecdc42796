"""POST /v1/chat/completions: authenticate, validate, route, relay, account."""

from __future__ import annotations

from gateway import limits, validate
from gateway.accounting import Usage
from gateway.auth import authenticate
from gateway.catalogue import authorize, get_catalogue
from gateway.http import Request
from gateway.relay import relay_chunks, send_answer
from gateway.routing import open_route, upstream_call
from gateway.tokens import messages_text

# The output cap's names in chat completions (max_tokens is the older one).
CAPS = ("max_completion_tokens", "max_tokens")


async def chat_completions(req: Request, usage: Usage) -> None:
    key = usage.key = await authenticate(req.credentials(), req.client_address())
    body = req.json()
    model_id = validate.model_id(body)
    validate.chat_messages(body.get("messages"))
    choices = validate.choices(body)
    stream, include_usage = validate.stream_flags(body)
    usage.stream = stream
    model = usage.model = authorize(await get_catalogue(), key, model_id, "chat")
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
        await send_answer(req, usage, reply, model_id, _message_chars)
    else:
        await relay_chunks(req, usage, reply, first, model_id, include_usage, _delta_chars)


def _message_chars(choice: dict) -> int:
    return _choice_chars(choice.get("message"))


def _delta_chars(choice: dict) -> int:
    return _choice_chars(choice.get("delta"))


def _choice_chars(part: object) -> int:
    if not isinstance(part, dict):
        return 0
    content = part.get("content")
    chars = len(content) if isinstance(content, str) else 0
    for call in part.get("tool_calls") or ():
        if isinstance(call, dict):
            chars += len(str((call.get("function") or {}).get("arguments") or ""))
    return chars
