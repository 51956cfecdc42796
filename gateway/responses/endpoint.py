"""POST /v1/responses: the Responses API, through the same hot path as chat.

Routes whose provider speaks the Responses API get the request as it came
(model rewritten); every other route gets it translated to chat completions,
with the answer translated back and the conversation kept for
`previous_response_id`. The client cannot tell which path a request took.
"""

from __future__ import annotations

import dataclasses

import orjson
from django.conf import settings

from gateway import limits, validate
from gateway.accounting import Usage
from gateway.auth import authenticate
from gateway.catalogue import RouteConfig, authorize, get_catalogue
from gateway.errors import GatewayError, InvalidRequest, UpstreamError
from gateway.http import Request
from gateway.providers.base import RetryableError, UpstreamCall, UpstreamReply
from gateway.providers.openai import OpenAIAdapter
from gateway.relay import SSE_HEADERS, drain
from gateway.responses.ids import new_id
from gateway.responses.store import conversation_get, conversation_put
from gateway.responses.stream import TranslatedEvents
from gateway.responses.tools import ToolMap
from gateway.responses.translate import (
    failure,
    input_items,
    to_chat_request,
    to_response,
)
from gateway.routing import open_route, upstream_call
from gateway.tokens import items_text

TERMINAL = frozenset(("response.completed", "response.incomplete", "response.failed"))


@dataclasses.dataclass
class Plan:
    body: dict
    items: list[dict]  # the whole conversation: stored history plus this input
    expanded: bool  # previous_response_id was ours and is folded into `items`
    response_id: str
    model_id: str
    account_id: int
    tools: ToolMap
    translated: TranslatedEvents | None = None


def _validate(body: dict) -> tuple[str, bool]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("You must provide a model parameter.", param="model")
    if "input" not in body and not body.get("previous_response_id"):
        raise InvalidRequest("You must provide 'input'.", param="input")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise InvalidRequest(
            "'previous_response_id' must be a string.", param="previous_response_id"
        )
    validate.responses_input(body)
    return model, bool(stream)


async def create_response(req: Request, usage: Usage) -> None:
    key = usage.key = await authenticate(req.credentials(), req.client_address())
    body = req.json()
    model_id, stream = _validate(body)
    usage.stream = stream
    model = usage.model = authorize(await get_catalogue(), key, model_id, "chat")
    validate.output_caps(body, model, ("max_output_tokens",))
    items = input_items(body) if "input" in body else []
    previous = body.get("previous_response_id")
    history = (
        await conversation_get(account_id=key.account_id, response_id=previous)
        if previous
        else None
    )
    if previous and history is None and not any(r.provider.responses_api for r in model.routes):
        raise InvalidRequest(
            f"Previous response with id '{previous}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
            status=404,
        )
    conversation = (history or []) + items
    plan = Plan(
        body=body,
        items=conversation,
        expanded=history is not None,
        response_id=new_id("resp"),
        model_id=model_id,
        account_id=key.account_id,
        tools=ToolMap(body, conversation),
    )
    text, count = items_text(plan.items)
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        text, count = f"{instructions}\n{text}", count + 1
    await limits.admit(
        key,
        model,
        usage,
        prompt=(text, count),
        body=body,
        cap_param="max_output_tokens",
        cap_to="max_output_tokens",
    )
    call = upstream_call(model, body, stream, usage)

    async def attempt(route: RouteConfig, call: UpstreamCall) -> UpstreamReply:
        return await _attempt(route, call, plan)

    reply, first = await open_route(model, call, usage, attempt)
    usage.upstream_request_id = reply.request_id
    if reply.stream is None:
        await _send(req, usage, reply, plan)
    else:
        await _relay(req, usage, reply, first, plan)


async def _attempt(route: RouteConfig, call: UpstreamCall, plan: Plan) -> UpstreamReply:
    adapter = route.adapter
    if route.provider.responses_api and isinstance(adapter, OpenAIAdapter):
        body = plan.body
        if plan.expanded:
            body = {k: v for k, v in body.items() if k != "previous_response_id"}
            body["input"] = plan.items
        plan.translated = None
        return await adapter.responses(dataclasses.replace(call, body=body))
    if plan.body.get("previous_response_id") and not plan.expanded:
        # Not ours and this upstream keeps no state: try another route.
        raise RetryableError(
            InvalidRequest(
                f"Previous response with id '{plan.body['previous_response_id']}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
                status=404,
            )
        )
    chat_body = to_chat_request(plan.body, plan.items, call.stream, plan.tools)
    reply = await adapter.chat(dataclasses.replace(call, body=chat_body))
    if reply.stream is None:
        assert reply.body is not None
        reply.body = to_response(
            reply.body,
            response_id=plan.response_id,
            model=plan.model_id,
            body=plan.body,
            tools=plan.tools,
        )
        plan.translated = None
        return reply
    try:
        # Read the upstream's first chunk here, so a route that fails before
        # its first byte is still failed over.
        first = await reply.stream.next()
    except GatewayError as exc:
        reply.stream.close()
        raise RetryableError(exc) from None
    translated = TranslatedEvents(
        reply.stream,
        response_id=plan.response_id,
        model=plan.model_id,
        body=plan.body,
        first=first,
        tools=plan.tools,
    )
    plan.translated = translated
    reply.stream = translated
    return reply


async def _remember(plan: Plan, output: list[dict]) -> None:
    """Keep the conversation for previous_response_id (translated routes only)."""
    if plan.body.get("store") is False:
        return
    await conversation_put(
        account_id=plan.account_id, response_id=plan.response_id, items=plan.items + output
    )


async def _send(req: Request, usage: Usage, reply: UpstreamReply, plan: Plan) -> None:
    body = reply.body
    assert body is not None
    body["model"] = plan.model_id
    usage.completion_chars = output_chars(body.get("output"))
    if body.get("usage") is not None:
        body["usage"] = usage.take_responses_usage(body["usage"])
    if body.get("id") == plan.response_id:  # translated: PureBridge keeps the state
        await _remember(plan, body.get("output") or [])
    usage.first_byte()
    await req.send_json(200, body, reply.headers)


def _event(event: dict) -> bytes:
    return (
        b"event: "
        + str(event.get("type", "")).encode()
        + b"\ndata: "
        + orjson.dumps(event)
        + b"\n\n"
    )


async def _relay(
    req: Request, usage: Usage, reply: UpstreamReply, event: dict | None, plan: Plan
) -> None:
    """Pass events on as they arrive; a stream that breaks after it started
    ends with response.failed, never with a silent end."""
    stream = reply.stream
    assert stream is not None
    await req.start(200, SSE_HEADERS + reply.headers)
    req.draining = settings.PUREBRIDGE_DRAIN_SECONDS > 0
    last_response: dict | None = None
    try:
        while event is not None:
            if req.disconnected:
                await drain(stream, usage, event, _take_terminal_usage)
                return
            kind = event.get("type")
            response = event.get("response")
            if isinstance(response, dict):
                response["model"] = plan.model_id
                last_response = response
            if kind in TERMINAL:
                if response is not None and response.get("usage") is not None:
                    response["usage"] = usage.take_responses_usage(response["usage"])
                if plan.translated is not None:
                    await _remember(plan, plan.translated.conversation_output)
                if kind == "response.failed":
                    error = (response or {}).get("error") or {}
                    usage.fail(UpstreamError(str(error.get("message") or "response failed")))
            elif kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
                usage.completion_chars += len(event.get("delta") or "")
            usage.first_byte()
            await req.send_body(_event(event), more=True)
            event = await stream.next()
        await req.send_body(b"")
    except GatewayError as error:
        usage.fail(error)
        await req.send_body(_event(_failed(plan, error, last_response)))
    finally:
        stream.close()


def _failed(plan: Plan, error: GatewayError, last_response: dict | None) -> dict:
    if plan.translated is not None:
        return plan.translated.fail(error)
    response = dict(last_response or {"id": plan.response_id, "object": "response", "output": []})
    response.update(status="failed", model=plan.model_id, error=failure(error))
    return {"type": "response.failed", "response": response}


def _take_terminal_usage(usage: Usage, event: dict) -> None:
    response = event.get("response")
    if (
        event.get("type") in TERMINAL
        and isinstance(response, dict)
        and response.get("usage") is not None
    ):
        usage.take_responses_usage(response["usage"])


def output_chars(output: object) -> int:
    """The characters of a response's output that a usage estimate counts:
    message text, tool call arguments and custom tool input."""
    chars = 0
    for item in output if isinstance(output, list) else ():
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                chars += len(part["text"])
        for name in ("arguments", "input"):
            if isinstance(item.get(name), str):
                chars += len(item[name])
    return chars
