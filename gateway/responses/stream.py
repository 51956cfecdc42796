"""A chat completions chunk stream, re-told as Responses API stream events.

Events come out in the order the Responses API emits them: response.created,
response.in_progress, then per output item output_item.added, (content_part
.added, output_text.delta…, output_text.done, content_part.done | function_call
_arguments.delta…, function_call_arguments.done), output_item.done, and last
response.completed with the usage, reasoning tokens always present.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from gateway.errors import GatewayError
from gateway.providers.base import ChunkStream
from gateway.responses.ids import new_id
from gateway.responses.tools import ToolMap
from gateway.responses.translate import (
    failure,
    message_item,
    response_object,
    responses_usage,
)


class TranslatedEvents(ChunkStream):
    def __init__(
        self,
        chunks: ChunkStream,
        *,
        response_id: str,
        model: str,
        body: dict,
        first: dict | None,
        tools: ToolMap,
    ) -> None:
        self._tools = tools
        self._chunks = chunks
        self._first = first  # read ahead by the router; None if the stream was empty
        self._id = response_id
        self._model = model
        self._body = body
        self._created_at = int(time.time())
        self._pending: deque[dict] = deque()
        self._sequence = 0
        self._output: list[dict] = []  # finished items
        self._text: dict | None = None  # the open message item
        self._text_parts: list[str] = []
        self._calls: dict[int, _OpenCall] = {}  # by the chat tool call's index
        self._usage: dict | None = None
        self._finish: str | None = None
        self._started = False
        self._finished = False
        self.conversation_output: list[dict] = []

    @property
    def bytes_read(self) -> int:  # type: ignore[override]
        return self._chunks.bytes_read

    def _emit(self, kind: str, **fields: object) -> None:
        self._pending.append({"type": kind, "sequence_number": self._sequence, **fields})
        self._sequence += 1

    def _response(self, status: str, **extra: object) -> dict:
        return response_object(
            response_id=self._id,
            created_at=self._created_at,
            model=self._model,
            body=self._body,
            status=status,
            output=list(self._output),
            usage=extra.pop("usage", None),  # type: ignore[arg-type]
            **extra,  # type: ignore[arg-type]
        )

    async def next(self) -> dict | None:
        while not self._pending:
            if self._finished:
                return None
            if not self._started:
                self._started = True
                self._emit("response.created", response=self._response("in_progress"))
                self._emit("response.in_progress", response=self._response("in_progress"))
                if self._first is not None:
                    self._take(self._first)
                    self._first = None
                else:
                    self._complete()
                continue
            chunk = await self._chunks.next()
            if chunk is None:
                self._complete()
            else:
                self._take(chunk)
        return self._pending.popleft()

    def fail(self, error: GatewayError) -> dict:
        """The response.failed event that ends a stream broken by `error`."""
        response = self._response("failed", error=failure(error))
        event = {"type": "response.failed", "sequence_number": self._sequence, "response": response}
        self._sequence += 1
        return event

    def _take(self, chunk: dict) -> None:
        if chunk.get("usage") is not None:
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self._text_delta(delta["content"])
            for call in delta.get("tool_calls") or ():
                self._call_delta(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]

    def _text_delta(self, text: str) -> None:
        if self._text is None:
            self._close_calls()
            self._text = message_item("", status="in_progress")
            self._emit(
                "response.output_item.added", output_index=len(self._output), item=self._text
            )
            self._emit(
                "response.content_part.added",
                item_id=self._text["id"],
                output_index=len(self._output),
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            )
        self._text_parts.append(text)
        self._emit(
            "response.output_text.delta",
            item_id=self._text["id"],
            output_index=len(self._output),
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _close_text(self) -> None:
        if self._text is None:
            return
        text = "".join(self._text_parts)
        index = len(self._output)
        item = message_item(text, item_id=self._text["id"])
        part = item["content"][0]
        self._emit(
            "response.output_text.done",
            item_id=item["id"],
            output_index=index,
            content_index=0,
            text=text,
            logprobs=[],
        )
        self._emit(
            "response.content_part.done",
            item_id=item["id"],
            output_index=index,
            content_index=0,
            part=part,
        )
        self._emit("response.output_item.done", output_index=index, item=item)
        self._output.append(item)
        self._text = None
        self._text_parts = []

    def _call_delta(self, call: dict) -> None:
        index = call.get("index", 0)
        function = call.get("function") or {}
        open_call = self._calls.get(index)
        if open_call is None:
            self._close_text()
            open_call = _OpenCall(
                call_id=call.get("id") or new_id("call"),
                name=function.get("name") or "",
                output_index=len(self._output) + len(self._calls),
            )
            item = self._tools.output_item(
                open_call.call_id, open_call.name, "", status="in_progress"
            )
            open_call.item_id = item["id"]
            self._calls[index] = open_call
            self._emit("response.output_item.added", output_index=open_call.output_index, item=item)
        arguments = function.get("arguments")
        if arguments:
            open_call.arguments.append(arguments)
            # A custom tool's input is known only once its JSON wrapper is whole.
            if not self._tools.is_custom(open_call.name):
                self._emit(
                    "response.function_call_arguments.delta",
                    item_id=open_call.item_id,
                    output_index=open_call.output_index,
                    delta=arguments,
                )

    def _close_calls(self) -> None:
        for open_call in sorted(self._calls.values(), key=lambda c: c.output_index):
            arguments = "".join(open_call.arguments)
            item = self._tools.output_item(
                open_call.call_id, open_call.name, arguments, item_id=open_call.item_id
            )
            out = open_call.output_index
            if item["type"] == "function_call":
                self._emit(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=out,
                    name=item["name"],
                    arguments=arguments,
                )
            else:
                self._emit(
                    "response.custom_tool_call_input.done",
                    item_id=item["id"],
                    output_index=out,
                    input=item["input"],
                )
            self._emit("response.output_item.done", output_index=out, item=item)
            self._output.append(item)
        self._calls.clear()

    def _complete(self) -> None:
        self._close_text()
        self._close_calls()
        self._finished = True
        incomplete = "max_output_tokens" if self._finish == "length" else None
        response = self._response(
            "incomplete" if incomplete else "completed",
            usage=responses_usage(self._usage),
            incomplete=incomplete,
        )
        self.conversation_output = list(self._output)
        self._emit("response.incomplete" if incomplete else "response.completed", response=response)

    def close(self) -> None:
        self._chunks.close()


@dataclass(slots=True)
class _OpenCall:
    call_id: str
    name: str  # the chat function name
    output_index: int
    item_id: str = ""
    arguments: list[str] = field(default_factory=list)
