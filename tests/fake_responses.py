"""The fake upstream's OpenAI Responses API (`POST /v1/responses`).

Same fault menu as the chat completions fake (options after `?` in the model
name); also `tool=NAME` answers with a function_call item calling NAME. It
remembers the ids it issued, so a `previous_response_id` it does not know is a
404, as at OpenAI.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from aiohttp import web

from tests.options import json_answer, reported, total


def _usage(opts: dict, output: int) -> dict:
    prompt = reported(opts, "prompt", 11)
    completed = reported(opts, "completion", output)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": reported(opts, "cached", 0)},
        "output_tokens": completed,
        "output_tokens_details": {"reasoning_tokens": reported(opts, "reasoning", 0)},
        "total_tokens": total(prompt, completed),
    }


def _response(n: int, body: dict, status: str, output: list, usage: dict | None) -> dict:
    return {
        "id": f"resp_fake{n}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "model": body.get("model"),
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "usage": usage,
    }


async def responses(upstream, request: web.Request) -> web.StreamResponse:
    body, opts, n = await upstream.take(request)
    headers = {"x-request-id": f"req_fake_{n}", "openai-processing-ms": "5"}
    if opts.get("hang"):
        await asyncio.sleep(3600)
    previous = body.get("previous_response_id")
    if previous and previous not in upstream.response_ids:
        error = {
            "message": f"Previous response with id '{previous}' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
        return web.json_response({"error": error}, status=404, headers=headers)
    if "status" in opts:
        status = int(opts["status"])
        if "retry_after" in opts:
            headers["retry-after"] = opts["retry_after"]
        error = {
            "message": f"fake upstream error {status}",
            "type": "server_error",
            "param": None,
            "code": "fake_error",
        }
        return web.json_response({"error": error}, status=status, headers=headers)
    upstream.response_ids.add(f"resp_fake{n}")
    tokens = int(opts.get("tokens", 3))
    pad = "x" * int(opts.get("pad", 0))
    text = " ".join(f"tok{i}{pad if i == 0 else ''}" for i in range(tokens))
    message = {
        "id": f"msg_fake{n}",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    output = [message]
    tool = opts.get("tool")
    call = {
        "id": f"fc_fake{n}",
        "type": "function_call",
        "status": "completed",
        "call_id": f"call_fake{n}",
        "name": tool,
        "arguments": '{"x": 1}',
    }
    if tool:
        output.append(call)
    usage = None if opts.get("no_usage") else _usage(opts, tokens)
    if not body.get("stream"):
        if int(opts.get("first_ms", 0)):
            await asyncio.sleep(int(opts["first_ms"]) / 1000)
        if opts.get("invalid_json"):
            return web.Response(body=b"<html>", content_type="application/json", headers=headers)
        answer = _response(n, body, "completed", output, usage)
        return await json_answer(request, answer, headers, opts)

    response = web.StreamResponse(headers={**headers, "content-type": "text/event-stream"})
    await response.prepare(request)
    upstream.stats["started"] += 1
    seq = 0
    interval = int(opts.get("interval_ms", 0)) / 1000
    cut_after = int(opts["cut_after"]) if "cut_after" in opts else None
    error_after = int(opts["error_after"]) if "error_after" in opts else None

    async def send(kind: str, data: dict | bytes) -> None:
        nonlocal seq
        payload = (
            data
            if isinstance(data, bytes)
            else orjson.dumps({"type": kind, "sequence_number": seq, **data})
        )
        seq += 1
        await response.write(b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n")

    try:
        if int(opts.get("first_ms", 0)):
            await asyncio.sleep(int(opts["first_ms"]) / 1000)
        await send("response.created", {"response": _response(n, body, "in_progress", [], None)})
        await send(
            "response.in_progress", {"response": _response(n, body, "in_progress", [], None)}
        )
        item = {**message, "status": "in_progress", "content": []}
        await send("response.output_item.added", {"output_index": 0, "item": item})
        part = {"type": "output_text", "text": "", "annotations": []}
        await send(
            "response.content_part.added",
            {"item_id": message["id"], "output_index": 0, "content_index": 0, "part": part},
        )
        for i in range(tokens):
            if cut_after is not None and i == cut_after:
                request.transport.close()
                return response
            if error_after is not None and i == error_after:
                await send(
                    "error",
                    {"code": "server_error", "message": "fake mid-stream failure", "param": None},
                )
                return response
            if opts.get("invalid_json") and i == 1:
                await send("response.output_text.delta", b"{not json")
                return response
            if interval and i:
                await asyncio.sleep(interval)
            delta = f"tok{i}{pad}" if i == 0 else f" tok{i}"
            await send(
                "response.output_text.delta",
                {
                    "item_id": message["id"],
                    "output_index": 0,
                    "content_index": 0,
                    "delta": delta,
                    "logprobs": [],
                },
            )
        await send(
            "response.output_text.done",
            {
                "item_id": message["id"],
                "output_index": 0,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            },
        )
        await send(
            "response.content_part.done",
            {
                "item_id": message["id"],
                "output_index": 0,
                "content_index": 0,
                "part": message["content"][0],
            },
        )
        await send("response.output_item.done", {"output_index": 0, "item": message})
        if tool:
            await send(
                "response.output_item.added",
                {"output_index": 1, "item": {**call, "status": "in_progress", "arguments": ""}},
            )
            await send(
                "response.function_call_arguments.delta",
                {"item_id": call["id"], "output_index": 1, "delta": call["arguments"]},
            )
            await send(
                "response.function_call_arguments.done",
                {"item_id": call["id"], "output_index": 1, "arguments": call["arguments"]},
            )
            await send("response.output_item.done", {"output_index": 1, "item": call})
        await send(
            "response.completed", {"response": _response(n, body, "completed", output, usage)}
        )
        upstream.stats["completed"] += 1
    except (ConnectionResetError, asyncio.CancelledError):
        upstream.stats["client_gone"] += 1
        raise
    return response
