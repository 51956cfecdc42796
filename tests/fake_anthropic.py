"""The fake upstream's Anthropic Messages API (`POST /v1/messages`).

Same fault menu as the chat completions fake (options after `?` in the model
name); also `tool=NAME` answers with a tool_use block calling NAME, and
`cache_write=N` reports cache-creation tokens. `cached=N` reports cache reads.
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from tests.options import reported

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _usage(opts: dict, output: int) -> dict:
    if opts.get("no_usage"):
        return {}  # as Anthropic-compatible proxies that report nothing send it
    return {
        "input_tokens": reported(opts, "prompt", 11),
        "output_tokens": reported(opts, "completion", output),
        "cache_read_input_tokens": reported(opts, "cached", 0),
        "cache_creation_input_tokens": reported(opts, "cache_write", 0),
    }


async def messages(upstream, request: web.Request) -> web.StreamResponse:
    body, opts, n = await upstream.take(request)
    headers = {"request-id": f"req_anthropic_{n}"}
    if opts.get("hang"):
        await asyncio.sleep(3600)
    if "status" in opts:
        status = int(opts["status"])
        if "retry_after" in opts:
            headers["retry-after"] = opts["retry_after"]
        kind = ERROR_TYPES.get(status, "api_error")
        error = {"type": "error", "error": {"type": kind, "message": f"fake anthropic {kind}"}}
        return web.json_response(error, status=status, headers=headers)
    first_ms = int(opts.get("first_ms", 0))
    tokens = int(opts.get("tokens", 3))
    tool = opts.get("tool")
    message_id = f"msg_fake{n}"
    if not body.get("stream"):
        if first_ms:
            await asyncio.sleep(first_ms / 1000)
        if opts.get("invalid_json"):
            return web.Response(body=b"<html>", content_type="application/json", headers=headers)
        content: list[dict] = [{"type": "text", "text": " ".join(["tok"] * tokens)}]
        if tool:
            content.append(
                {"type": "tool_use", "id": f"toolu_{n}", "name": tool, "input": {"x": 1}}
            )
        answer = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": content,
            "stop_reason": "tool_use" if tool else "end_turn",
            "stop_sequence": None,
            "usage": _usage(opts, tokens),
        }
        return web.Response(
            body=orjson.dumps(answer), content_type="application/json", headers=headers
        )
    return await _stream(upstream, request, body, opts, headers, message_id, n)


async def _stream(upstream, request, body, opts, headers, message_id, n) -> web.StreamResponse:
    response = web.StreamResponse(headers={**headers, "content-type": "text/event-stream"})
    await response.prepare(request)
    upstream.stats["started"] += 1
    tokens = int(opts.get("tokens", 3))
    interval = int(opts.get("interval_ms", 0)) / 1000
    cut_after = int(opts["cut_after"]) if "cut_after" in opts else None
    error_after = int(opts["error_after"]) if "error_after" in opts else None
    tool = opts.get("tool")

    async def send(kind: str, data: dict | bytes) -> None:
        payload = data if isinstance(data, bytes) else orjson.dumps({"type": kind, **data})
        await response.write(b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n")

    try:
        if int(opts.get("first_ms", 0)):
            await asyncio.sleep(int(opts["first_ms"]) / 1000)
        usage = _usage(opts, 1)
        await send(
            "message_start",
            {
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model"),
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                }
            },
        )
        await send(
            "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
        )
        await send("ping", {})
        for i in range(tokens):
            if cut_after is not None and i == cut_after:
                request.transport.close()
                return response
            if error_after is not None and i == error_after:
                await send(
                    "error", {"error": {"type": "overloaded_error", "message": "Overloaded"}}
                )
                return response
            if opts.get("invalid_json") and i == 1:
                await send("content_block_delta", b"{not json")
                return response
            if interval and i:
                await asyncio.sleep(interval)
            await send(
                "content_block_delta",
                {"index": 0, "delta": {"type": "text_delta", "text": f"tok{i} "}},
            )
        await send("content_block_stop", {"index": 0})
        if tool:
            await send(
                "content_block_start",
                {
                    "index": 1,
                    "content_block": {
                        "type": "tool_use",
                        "id": f"toolu_{n}",
                        "name": tool,
                        "input": {},
                    },
                },
            )
            for part in ('{"x"', ": 1}"):
                await send(
                    "content_block_delta",
                    {"index": 1, "delta": {"type": "input_json_delta", "partial_json": part}},
                )
            await send("content_block_stop", {"index": 1})
        final_usage = {k: v for k, v in _usage(opts, tokens).items() if k == "output_tokens"}
        await send(
            "message_delta",
            {
                "delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
                "usage": final_usage,
            },
        )
        await send("message_stop", {})
        upstream.stats["completed"] += 1
    except (ConnectionResetError, asyncio.CancelledError):
        upstream.stats["client_gone"] += 1
        raise
    return response
