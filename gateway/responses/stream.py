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

from gateway.errors import GatewayError
from gateway.providers.base import ChunkStream
from gateway.responses.translate import (
    failure,
    function_call_item,
    message_item,
    new_id,
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
    ) -> None:
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
        self._calls: dict[int, dict] = {}  # chat tool call index -> open function_call item
        self._call_args: dict[int, list[str]] = {}
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
        if chunk.get("usage"):
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
        item = self._calls.get(index)
        if item is None:
            self._close_text()
            item = function_call_item(
                call.get("id") or new_id("call"),
                function.get("name") or "",
                "",
                status="in_progress",
            )
            item["output_index"] = len(self._output) + len(self._calls)
            self._calls[index] = item
            self._call_args[index] = []
            self._emit(
                "response.output_item.added", output_index=item["output_index"], item=_public(item)
            )
        if function.get("arguments"):
            self._call_args[index].append(function["arguments"])
            self._emit(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=item["output_index"],
                delta=function["arguments"],
            )

    def _close_calls(self) -> None:
        for index, open_item in sorted(self._calls.items(), key=lambda kv: kv[1]["output_index"]):
            arguments = "".join(self._call_args[index])
            item = function_call_item(
                open_item["call_id"], open_item["name"], arguments, item_id=open_item["id"]
            )
            out = open_item["output_index"]
            self._emit(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=out,
                name=item["name"],
                arguments=arguments,
            )
            self._emit("response.output_item.done", output_index=out, item=item)
            self._output.append(item)
        self._calls.clear()
        self._call_args.clear()

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


def _public(item: dict) -> dict:
    return {k: v for k, v in item.items() if k != "output_index"}
