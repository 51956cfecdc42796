"""Reading server-sent events from an upstream, however the bytes are split."""

import asyncio

import pytest

from gateway.sse import EventTooLarge, SSEReader


def events_of(*reads: bytes, max_event: int = 1 << 20) -> list[tuple[bytes, bytes]]:
    """Every event SSEReader yields when the upstream's bytes arrive in these reads."""
    pending = list(reads)

    async def read() -> bytes:
        return pending.pop(0) if pending else b""

    async def collect() -> list[tuple[bytes, bytes]]:
        reader = SSEReader(read, max_event)
        found = []
        while (event := await reader.next()) is not None:
            found.append(event)
        return found

    return asyncio.run(collect())


def test_events_split_across_reads_are_put_back_together():
    assert events_of(b'data: {"a"', b": 1}\n", b"\ndata: [DO", b"NE]\n\n") == [
        (b"", b'{"a": 1}'),
        (b"", b"[DONE]"),
    ]


def test_crlf_line_endings_are_read_like_lf():
    assert events_of(b"data: one\r\n\r", b"\ndata: two\r\n\r\n") == [(b"", b"one"), (b"", b"two")]


def test_comments_and_keep_alives_are_not_events():
    assert events_of(b": keep-alive\n\n: ping\n\ndata: x\n\n") == [(b"", b"x")]


def test_multi_line_data_is_joined_with_newlines():
    assert events_of(b"data: a\ndata: b\n\n") == [(b"", b"a\nb")]


def test_data_without_a_space_after_the_colon_is_read():
    assert events_of(b"data:{}\n\n") == [(b"", b"{}")]


def test_event_names_are_kept():
    assert events_of(b"event: message_start\ndata: {}\n\n") == [(b"message_start", b"{}")]


def test_a_last_event_without_its_blank_line_is_still_read():
    assert events_of(b"data: last\n") == [(b"", b"last")]


def test_bytes_without_an_event_boundary_past_the_bound_raise_after_the_events_before():
    found = []

    async def collect() -> None:
        reads = [b"data: a\n\ndata: " + b"x" * 60, b"x" * 60, b"never ends"]
        reader = SSEReader(lambda: _pop(reads), max_event=100)
        while (event := await reader.next()) is not None:
            found.append(event)

    with pytest.raises(EventTooLarge):
        asyncio.run(collect())
    assert found == [(b"", b"a")]


def test_a_whole_event_past_the_bound_in_one_read_raises():
    with pytest.raises(EventTooLarge):
        events_of(b"data: " + b"x" * 200 + b"\n\ndata: b\n\n", max_event=100)


def test_an_event_at_the_bound_is_read():
    data = b"x" * 94
    assert events_of(b"data: " + data + b"\n\n", max_event=100) == [(b"", data)]


async def _pop(reads: list[bytes]) -> bytes:
    return reads.pop(0) if reads else b""
