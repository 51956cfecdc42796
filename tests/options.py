"""The fake upstreams' behaviour options, read from the model name after `?`,
and the way they answer with JSON."""

import gzip
from urllib.parse import parse_qs

import orjson
from aiohttp import web


def options(model: str) -> dict[str, str]:
    _, _, query = model.partition("?")
    return {k: v[-1] for k, v in parse_qs(query).items()}


def reported(opts: dict[str, str], name: str, default: int) -> object:
    """A usage count the fake reports: `name=N` as a number, or anything a
    lying upstream might send instead (`-5`, `1.5`, `null`, `many`)."""
    raw = opts.get(name)
    if raw is None:
        return default
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def total(*counts: object) -> object:
    """total_tokens as an upstream adds it up: None when the parts are not numbers."""
    numbers = [c for c in counts if isinstance(c, int | float) and not isinstance(c, bool)]
    return sum(numbers) if len(numbers) == len(counts) else None


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
