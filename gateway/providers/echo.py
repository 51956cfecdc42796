"""The built-in demo upstream, no network: a chat answer or a text completion
repeats what it was sent; an embedding is a vector derived from its input's
hash (the same input, the same vector), so every route can be tried on a fresh
install."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import struct
import time

from gateway.providers.base import Adapter, ChunkStream, UpstreamCall, UpstreamReply
from gateway.tokens import estimate_prompt, estimate_text, message_text

_WORDS = re.compile(r"\S+\s*|\s+")


EMBEDDING_DIMENSIONS = 16  # unless the request asks for `dimensions`


class EchoAdapter(Adapter):
    serves = frozenset(("completions", "embeddings"))

    async def chat(self, call: UpstreamCall) -> UpstreamReply:
        messages = call.body.get("messages") or []
        text = (
            next(
                (
                    message_text(m.get("content"))
                    for m in reversed(messages)
                    if isinstance(m, dict) and m.get("role") == "user"
                ),
                "",
            )
            or "Hello from PureBridge."
        )
        completion_id = f"chatcmpl-echo{secrets.token_hex(12)}"
        created = int(time.time())
        prompt_tokens = estimate_prompt(messages)
        completion_tokens = estimate_text(text)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        reply = _reply()
        base = {"id": completion_id, "created": created, "model": call.upstream_model}
        if not call.stream:
            reply.body = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            return reply
        chunk = {**base, "object": "chat.completion.chunk"}
        chunks = [
            {**chunk, "choices": [_choice({"role": "assistant", "content": ""})], "usage": None}
        ]
        chunks += [
            {**chunk, "choices": [_choice({"content": word})], "usage": None}
            for word in _WORDS.findall(text)
        ]
        chunks.append({**chunk, "choices": [_choice({}, finish="stop")], "usage": None})
        chunks.append({**chunk, "choices": [], "usage": usage})
        reply.stream = ListStream(chunks)
        return reply

    async def completions(self, call: UpstreamCall) -> UpstreamReply:
        """The prompt (its first, when a list) repeated, whole or word by word."""
        prompt = call.body.get("prompt")
        if isinstance(prompt, list):
            prompt = prompt[0] if prompt else ""
        text = prompt if isinstance(prompt, str) and prompt else "Hello from PureBridge."
        prompt_tokens, completion_tokens = estimate_text(text), estimate_text(text)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        reply = _reply()
        base = {
            "id": f"cmpl-echo{secrets.token_hex(12)}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": call.upstream_model,
        }
        if not call.stream:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
            reply.body = {**base, "choices": [choice], "usage": usage}
            return reply
        chunks = [
            {**base, "choices": [_text(word, None)], "usage": None} for word in _WORDS.findall(text)
        ]
        chunks.append({**base, "choices": [_text("", "stop")], "usage": None})
        chunks.append({**base, "choices": [], "usage": usage})
        reply.stream = ListStream(chunks)
        return reply

    async def embeddings(self, call: UpstreamCall) -> UpstreamReply:
        """A unit vector per input, from its hash; floats or base64 (float32)
        as asked."""
        given = call.body.get("input")
        inputs = given if isinstance(given, list) and given and not _tokens(given) else [given]
        dimensions = call.body.get("dimensions") or EMBEDDING_DIMENSIONS
        as_base64 = call.body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(inputs):
            vector = _vector(repr(item).encode(), dimensions)
            packed = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            embedding: object = packed if as_base64 else vector
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(_input_tokens(item) for item in inputs)
        reply = _reply()
        reply.body = {
            "object": "list",
            "data": data,
            "model": call.upstream_model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return reply


def _reply() -> UpstreamReply:
    request_id = f"req_echo{secrets.token_hex(12)}"
    return UpstreamReply(
        status=200, request_id=request_id, headers=[(b"x-request-id", request_id.encode())]
    )


def _input_tokens(item: object) -> int:
    return len(item) if isinstance(item, list) else estimate_text(str(item))


def _tokens(value: object) -> bool:
    """A token array: a list of integers."""
    return isinstance(value, list) and all(isinstance(t, int) for t in value)


def _vector(seed: bytes, dimensions: int) -> list[float]:
    raw = b""
    while len(raw) < 4 * dimensions:
        seed = hashlib.sha256(seed).digest()
        raw += seed
    values = [(b - 127.5) / 127.5 for b in raw[:dimensions]]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return [v / norm for v in values]


def _text(text: str, finish: str | None) -> dict:
    return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}


def _choice(delta: dict, finish: str | None = None) -> dict:
    return {"index": 0, "delta": delta, "finish_reason": finish}


class ListStream(ChunkStream):
    def __init__(self, chunks: list[dict]) -> None:
        self._chunks = iter(chunks)

    async def next(self) -> dict | None:
        return next(self._chunks, None)

    def close(self) -> None:
        self._chunks = iter(())
