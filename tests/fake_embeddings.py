"""The fake upstream's embeddings (`POST /v1/embeddings`).

Same fault menu as the chat completions fake (options after `?` in the model
name): status=N (retry_after=S), hang=1, first_ms=N, invalid_json=1,
no_usage=1, prompt=N (any JSON value or word, reported as it is), chunked=1,
gzip=1. One vector per input, `dimensions` long (default 8), its values
derived from the input; `encoding_format: "base64"` sends each as base64 of
little-endian float32, as OpenAI does. The prompt_tokens it reports by
default are the words of the strings plus the ids of the token arrays.
"""

from __future__ import annotations

import base64
import struct

from aiohttp import web

from tests.options import json_answer, reported

DIMENSIONS = 8


def vector(item: object, dimensions: int) -> list[float]:
    """A vector for one input, the same every time it is asked."""
    seed = sum(map(ord, item)) if isinstance(item, str) else sum(item)  # type: ignore[arg-type]
    return [((seed + i) % 97) / 97 for i in range(dimensions)]


def as_base64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _items(raw: object) -> list:
    """The inputs one by one: a string, or a token array, each one item."""
    if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
        return [raw]
    return list(raw) if isinstance(raw, list) else []


def _tokens(items: list) -> int:
    return sum(len(item.split()) if isinstance(item, str) else len(item) for item in items)


async def embeddings(upstream, request: web.Request) -> web.StreamResponse:
    body, opts, n = await upstream.take(request)
    headers = {"x-request-id": f"req_fake_{n}", "openai-processing-ms": "3"}
    if opts.get("hang"):
        await upstream._wait(3600)
    if "status" in opts:
        return upstream.error_answer(request, body, opts, headers)
    if "first_ms" in opts:
        await upstream._wait(int(opts["first_ms"]) / 1000)
    if opts.get("invalid_json"):
        return web.Response(
            body=b"<html>not json", content_type="application/json", headers=headers
        )
    items = _items(body.get("input"))
    dimensions = body.get("dimensions") or DIMENSIONS
    encode = as_base64 if body.get("encoding_format") == "base64" else list
    answer: dict = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(vector(item, dimensions))}
            for i, item in enumerate(items)
        ],
        "model": body.get("model"),
    }
    if not opts.get("no_usage"):
        prompt = reported(opts, "prompt", _tokens(items))
        answer["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
    return await json_answer(request, answer, headers, opts)
