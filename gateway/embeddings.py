"""POST /v1/embeddings: the chat hot path (key, model, admission, routes,
record) for an embedding model, with no output: the input is reserved at the
input price, and the upstream's answer (float or base64 vectors) is passed
through as it came, under the public model id."""

from __future__ import annotations

from gateway import limits, validate
from gateway.accounting import Usage
from gateway.auth import authenticate
from gateway.catalogue import RouteConfig, authorize, get_catalogue
from gateway.http import Request
from gateway.providers.base import UpstreamCall, UpstreamReply
from gateway.routing import open_route, routes_serving, upstream_call
from gateway.tokens import plain_input


async def create_embeddings(req: Request, usage: Usage) -> None:
    key = usage.key = await authenticate(req.credentials(), req.client_address())
    body = req.json()
    model_id = validate.model_id(body)
    validate.plain_input(body, "input")
    validate.whole_number(body, "dimensions")
    model = usage.model = authorize(await get_catalogue(), key, model_id, "embedding")
    model = routes_serving(model, "embeddings")
    await limits.admit(
        key, model, usage, prompt=plain_input(body["input"]), body=body, cap_param=""
    )
    reply, _ = await open_route(model, upstream_call(model, body, False, usage), usage, _attempt)
    usage.upstream_request_id = reply.request_id
    answer = reply.body
    assert answer is not None
    answer["model"] = model_id
    if answer.get("usage") is not None:
        answer["usage"] = usage.take_embeddings_usage(answer["usage"])
    usage.first_byte()
    await req.send_json(200, answer, reply.headers)


async def _attempt(route: RouteConfig, call: UpstreamCall) -> UpstreamReply:
    return await route.adapter.embeddings(call)  # routes_serving kept only those that do
