"""Reading server-sent events from an upstream byte stream."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable


class SSEReader:
    """Yields the `data` payload of each event; `None` at the end of the stream.

    Only `data:` fields matter to the APIs PureBridge speaks; `event:` names are
    kept alongside for APIs that use them (Anthropic, Responses).
    """

    __slots__ = ("_read", "_buffer", "_ready", "_eof")

    def __init__(self, read: Callable[[], Awaitable[bytes]]) -> None:
        self._read = read
        self._buffer = b""
        self._ready: deque[tuple[bytes, bytes]] = deque()
        self._eof = False

    async def next(self) -> tuple[bytes, bytes] | None:
        """The next (event name, data) pair, or None when the stream has ended."""
        while not self._ready:
            if self._eof:
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
        for raw in events:
            name = b""
            data: list[bytes] = []
            for line in raw.split(b"\n"):
                if line.startswith(b"data:"):
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line.startswith(b"event:"):
                    name = line[6:].strip()
            if data:
                self._ready.append((name, b"\n".join(data)))
