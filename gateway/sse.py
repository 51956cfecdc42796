"""Reading server-sent events from an upstream byte stream."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable


class EventTooLarge(Exception):
    """An event (or bytes with no event boundary) grew past the reader's bound."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a stream event is larger than {limit} bytes")
        self.limit = limit


class SSEReader:
    """Yields the `data` payload of each event; `None` at the end of the stream.

    Only `data:` fields matter to the APIs PureBridge speaks; `event:` names are
    kept alongside for APIs that use them (Anthropic, Responses). An event
    larger than `max_event` bytes raises EventTooLarge once the events before
    it are read: without a bound, an upstream that never ends an event would
    grow the buffer (and rescan it on every read) without end.
    """

    __slots__ = ("_read", "_buffer", "_ready", "_eof", "_max_event", "_too_large")

    def __init__(self, read: Callable[[], Awaitable[bytes]], max_event: int) -> None:
        self._read = read
        self._buffer = b""
        self._ready: deque[tuple[bytes, bytes]] = deque()
        self._eof = False
        self._max_event = max_event
        self._too_large = False

    async def next(self) -> tuple[bytes, bytes] | None:
        """The next (event name, data) pair, or None when the stream has ended."""
        while not self._ready:
            if self._eof:
                # Checked only here, so a healthy stream pays nothing for it.
                if self._too_large:
                    raise EventTooLarge(self._max_event)
                return None
            chunk = await self._read()
            if not chunk:
                self._eof = True
                chunk = b"\n\n"  # a final event without its blank line
            self._buffer += chunk
            if b"\r" in self._buffer:
                self._buffer = self._buffer.replace(b"\r\n", b"\n")
            self._split()
        return self._ready.popleft()

    def _split(self) -> None:
        *events, self._buffer = self._buffer.split(b"\n\n")
        limit = self._max_event
        for raw in events:
            if len(raw) > limit:
                self._overflow()
                return
            name = b""
            data: list[bytes] = []
            for line in raw.split(b"\n"):
                if line.startswith(b"data:"):
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line.startswith(b"event:"):
                    name = line[6:].strip()
            if data:
                self._ready.append((name, b"\n".join(data)))
        if len(self._buffer) > limit:
            self._overflow()

    def _overflow(self) -> None:
        # Read no further: the events already split are still delivered, then
        # next() raises in place of the end of the stream.
        self._buffer = b""
        self._eof = self._too_large = True
