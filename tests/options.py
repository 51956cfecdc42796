"""The fake upstreams' behaviour options, read from the model name after `?`,
and the way they answer with JSON."""

import gzip
from urllib.parse import parse_qs

import orjson
from aiohttp import web


def options(model: str) -> dict[str, str]:
    _, _, query = model.partition("?")
    return {k: v[-1] for k, v in parse_qs(query).items()}


async def json_answer(
    request: web.Request, answer: dict, headers: dict, opts: dict
) -> web.StreamResponse:
    """`answer` with a Content-Length, or with `chunked=1` without one;
    `gzip=1` compresses it (Content-Encoding: gzip)."""
    body = orjson.dumps(answer)
    if opts.get("gzip"):
        body = gzip.compress(body)
        headers = {**headers, "content-encoding": "gzip"}
    if not opts.get("chunked"):
        return web.Response(body=body, content_type="application/json", headers=headers)
    response = web.StreamResponse(headers={**headers, "content-type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for start in range(0, len(body), 65536):
        await response.write(body[start : start + 65536])
    await response.write_eof()
    return response
