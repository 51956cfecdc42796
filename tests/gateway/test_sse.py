"""Reading server-sent events from an upstream, however the bytes are split."""

import asyncio

from gateway.sse import SSEReader


def events_of(*reads: bytes) -> list[tuple[bytes, bytes]]:
    """Every event SSEReader yields when the upstream's bytes arrive in these reads."""
    pending = list(reads)

    async def read() -> bytes:
        return pending.pop(0) if pending else b""

    async def collect() -> list[tuple[bytes, bytes]]:
        reader = SSEReader(read)
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
