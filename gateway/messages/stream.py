"""A chat completions stream as Anthropic's stream events, in the order
Anthropic sends them: message_start, ping, then per content block
content_block_start, its deltas and content_block_stop, then message_delta
(stop reason and usage) and message_stop."""

from __future__ import annotations

from collections import deque

from gateway.messages.translate import anthropic_usage, stop_reason
from gateway.providers.base import ChunkStream
from gateway.responses.ids import new_id


class TranslatedEvents(ChunkStream):
    """Reads chat chunks on demand, hands out Anthropic events one by one.
    `usage` is the upstream's usage in Anthropic's words once it came."""

    def __init__(self, chunks: ChunkStream, model: str) -> None:
        self._chunks = chunks
        self._model = model
        self._ready: deque[dict] = deque()
        self._started = False
        self._ended = False
        self._block: int | None = None  # the open content block's index
        self._kind = ""  # its type: "text" or "tool_use"
        self._blocks = 0
        self._tools: dict[int, int] = {}  # chat tool call index -> block index
        self._stop = "end_turn"
        self.usage: dict | None = None

    @property
    def bytes_read(self) -> int:  # type: ignore[override]
        return self._chunks.bytes_read

    def close(self) -> None:
        self._chunks.close()

    async def next(self) -> dict | None:
        while not self._ready:
            if self._ended:
                return None
            # The first chunk is read before message_start: a route that fails
            # before it is still failed over (gateway/routing.py).
            chunk = await self._chunks.next()
            if not self._started:
                self._start()
            if chunk is None:
                self._finish()
            else:
                self._translate(chunk)
        return self._ready.popleft()

    def _start(self) -> None:
        self._started = True
        message: dict = {
            "id": new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        self._ready.append({"type": "message_start", "message": message})
        self._ready.append({"type": "ping"})

    def _translate(self, chunk: dict) -> None:
        if chunk.get("usage") is not None:
            self.usage = anthropic_usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._kind != "text":
                    self._open({"type": "text", "text": ""}, "text")
                self._delta({"type": "text_delta", "text": text})
            for call in delta.get("tool_calls") or ():
                self._tool_call(call)
            if choice.get("finish_reason"):
                self._stop = stop_reason(choice["finish_reason"])

    def _tool_call(self, call: dict) -> None:
        index = call.get("index", 0)
        function = call.get("function") or {}
        if index not in self._tools:
            block: dict = {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu"),
                "name": function.get("name") or "",
                "input": {},
            }
            self._open(block, "tool_use")
            self._tools[index] = self._blocks - 1
        elif self._tools[index] != self._block:
            return  # a call resumed after another began: Anthropic's blocks cannot interleave
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._delta({"type": "input_json_delta", "partial_json": arguments})

    def _open(self, block: dict, kind: str) -> None:
        self._close()
        self._block, self._kind = self._blocks, kind
        self._blocks += 1
        self._ready.append(
            {"type": "content_block_start", "index": self._block, "content_block": block}
        )

    def _delta(self, delta: dict) -> None:
        self._ready.append({"type": "content_block_delta", "index": self._block, "delta": delta})

    def _close(self) -> None:
        if self._block is not None:
            self._ready.append({"type": "content_block_stop", "index": self._block})
            self._block, self._kind = None, ""

    def _finish(self) -> None:
        self._ended = True
        self._close()
        usage = self.usage or {}
        self._ready.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": self._stop, "stop_sequence": None},
                "usage": {k: v for k, v in usage.items() if v is not None},
            }
        )
        self._ready.append({"type": "message_stop"})
