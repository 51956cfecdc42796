"""The Messages ↔ chat completions translation, piece by piece."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.messages.stream import TranslatedEvents
from gateway.messages.translate import anthropic_usage, to_chat_request, to_message, tool_input
from gateway.providers.base import ChunkStream


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reasons_become_anthropics_stop_reasons(finish, stop):
    completion = {"choices": [{"message": {"content": "x"}, "finish_reason": finish}]}

    assert to_message(completion, "m")["stop_reason"] == stop


def test_cache_reads_leave_input_tokens_as_anthropic_counts_them():
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 60},
    }

    assert anthropic_usage(usage) == {
        "input_tokens": 40,
        "output_tokens": 5,
        "cache_read_input_tokens": 60,
        "cache_creation_input_tokens": 0,
    }


def test_a_prompt_count_that_is_not_one_is_carried_over_for_the_endpoint_to_judge():
    usage = {
        "prompt_tokens": "many",
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 6},
    }

    assert anthropic_usage(usage)["input_tokens"] == "many"


def test_tool_arguments_that_are_not_an_object_are_kept_whole():
    assert tool_input('{"a": 1}') == {"a": 1}
    assert tool_input("[1, 2]") == {"arguments": "[1, 2]"}
    assert tool_input("") == {}


def test_a_tool_result_that_failed_says_so_and_keeps_only_its_text():
    body = {
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "is_error": True,
                        "content": [{"type": "text", "text": "no such file"}],
                    }
                ],
            }
        ],
    }

    assert to_chat_request(body, stream=False)["messages"] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: no such file"}
    ]


def test_server_tools_are_refused_for_a_chat_upstream():
    body = {
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }

    with pytest.raises(InvalidRequest) as refused:
        to_chat_request(body, stream=False)

    assert refused.value.param == "tools.0"


class Chunks(ChunkStream):
    def __init__(self, chunks: list[dict]) -> None:
        self.chunks = chunks

    async def next(self) -> dict | None:
        return self.chunks.pop(0) if self.chunks else None

    def close(self) -> None:
        pass


async def test_text_then_two_tool_calls_are_three_blocks_each_closed_before_the_next():
    def delta(d: dict, finish: str | None = None) -> dict:
        return {"choices": [{"index": 0, "delta": d, "finish_reason": finish}]}

    call = {"type": "function", "function": {"name": "f", "arguments": ""}}
    stream = TranslatedEvents(
        Chunks(
            [
                delta({"role": "assistant", "content": "hi"}),
                delta({"tool_calls": [{"index": 0, "id": "c1", **call}]}),
                delta({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
                delta({"tool_calls": [{"index": 1, "id": "c2", **call}]}),
                delta({}, "tool_calls"),
                {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
            ]
        ),
        "m",
    )

    events = []
    while (event := await stream.next()) is not None:
        events.append(event)

    assert [(e["type"], e.get("index")) for e in events] == [
        ("message_start", None),
        ("ping", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"]["output_tokens"] == 2
    assert stream.usage is not None and stream.usage["input_tokens"] == 3
