"""The fake upstream's legacy text completions (`POST /v1/completions`).

Same fault menu as the chat completions fake (options after `?` in the model
name): status=N (retry_after=S), hang=1, first_ms=N, interval_ms=N, tokens=N,
cut_after=N, error_after=N, error_first=1, invalid_json=1, no_usage=1,
prompt=N, completion=N, chunked=1, gzip=1. Each of `n` choices is the words
`tok0 tok1 ...`; with `echo` the (string) prompt comes first, as OpenAI
sends it. The usage chunk of a stream is sent only when asked for
(`stream_options.include_usage`).
"""

from __future__ import annotations

import asyncio
import time

import orjson
from aiohttp import web

from tests.options import json_answer, reported, total

FAILURE = {"message": "fake failure", "type": "server_error", "param": None, "code": None}


def _usage(opts: dict, completion: int) -> dict:
    prompt = reported(opts, "prompt", 11)
    completed = reported(opts, "completion", completion)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completed,
        "total_tokens": total(prompt, completed),
    }


def _choice(index: int, text: str, finish: str | None) -> dict:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish}


async def completions(upstream, request: web.Request) -> web.StreamResponse:
    body, opts, n = await upstream.take(request)
    headers = {"x-request-id": f"req_fake_{n}", "openai-processing-ms": "4"}
    if opts.get("hang"):
        await upstream._wait(3600)
    if "status" in opts:
        return upstream.error_answer(request, body, opts, headers)
    tokens = int(opts.get("tokens", 3))
    choices = int(body.get("n") or 1)
    base = {
        "id": f"cmpl-fake{n}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.get("model"),
    }
    prompt = body.get("prompt")
    echoed = prompt if body.get("echo") and isinstance(prompt, str) else ""
    if body.get("stream"):
        return await _stream(upstream, request, body, opts, headers, base, echoed, choices)
    if "first_ms" in opts:
        await upstream._wait(int(opts["first_ms"]) / 1000)
    if opts.get("invalid_json"):
        return web.Response(
            body=b"<html>not json", content_type="application/json", headers=headers
        )
    text = echoed + " ".join(f"tok{i}" for i in range(tokens))
    answer = {**base, "choices": [_choice(i, text, "length") for i in range(choices)]}
    if not opts.get("no_usage"):
        answer["usage"] = _usage(opts, tokens * choices)
    return await json_answer(request, answer, headers, opts)


async def _stream(upstream, request, body, opts, headers, base, echoed, choices):
    response = web.StreamResponse(headers={**headers, "content-type": "text/event-stream"})
    await response.prepare(request)
    upstream.stats["started"] += 1
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    usage_field = {"usage": None} if include_usage else {}
    tokens = int(opts.get("tokens", 3))
    interval = int(opts.get("interval_ms", 0)) / 1000

    async def send(obj: object) -> None:
        data = obj if isinstance(obj, bytes) else orjson.dumps(obj)
        await response.write(b"data: " + data + b"\n\n")

    async def chunk(text: str, finish: str | None = None) -> None:
        parts = [_choice(i, text, finish) for i in range(choices)]
        await send({**base, "choices": parts, **usage_field})

    try:
        if "first_ms" in opts:
            await asyncio.sleep(int(opts["first_ms"]) / 1000)
        if opts.get("error_first"):
            await send({"error": FAILURE})
            return response
        if echoed:
            await chunk(echoed)
        for i in range(tokens):
            if str(i) == opts.get("cut_after"):
                request.transport.close()
                return response
            if str(i) == opts.get("error_after"):
                await send({"error": FAILURE})
                return response
            if opts.get("invalid_json") and i == 1:
                await send(b"{not json")
                return response
            if interval and i:
                await asyncio.sleep(interval)
            await chunk(f"tok{i} ")
        await chunk("", "length")
        if include_usage and not opts.get("no_usage"):
            await send({**base, "choices": [], "usage": _usage(opts, tokens * choices)})
        await response.write(b"data: [DONE]\n\n")
        upstream.stats["completed"] += 1
    except (ConnectionResetError, asyncio.CancelledError):
        upstream.stats["client_gone"] += 1
        raise
    return response
