"""CSV exports: cells a spreadsheet will not run as formulas, streamed row by
row so a large export holds one batch of rows in memory, not the file.

    return csv_response(request, "usage.csv", header, rows)  # rows: any iterable of lists

`rows` is read in a worker thread, a batch at a time (it may run database
queries), while the event loop sends what is ready: under ASGI a plain
iterator would be read whole before the first byte goes out (Django's
StreamingHttpResponse does that with synchronous iterators).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from itertools import islice

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse

# A text cell starting with one of these is read as a formula by Excel, LibreOffice
# and Google Sheets (tab and carriage return per OWASP's CSV injection advice).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 500


def csv_cell(value: object) -> str:
    """A value as a CSV cell: text that a spreadsheet would run as a formula
    gets a leading single quote; numbers (int, Decimal, float) stay numbers,
    so a negative amount is still -1.5, not text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(header: list[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The header and each row as CSV text, chunk by chunk (ROWS_PER_CHUNK rows)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_cell(name) for name in header])
    iterator = iter(rows)
    while True:
        batch = list(islice(iterator, ROWS_PER_CHUNK))
        writer.writerows([csv_cell(value) for value in row] for row in batch)
        if buffer.tell():
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if len(batch) < ROWS_PER_CHUNK:
            return


def _next(lines: Iterator[str]) -> str | None:
    return next(lines, None)


async def _streamed(lines: Iterator[str]) -> AsyncIterator[bytes]:
    read = sync_to_async(_next)
    while True:
        chunk = await read(lines)
        if chunk is None:
            return
        yield chunk.encode()


def csv_response(
    request: HttpRequest, filename: str, header: list[str], rows: Iterable[Iterable[object]]
) -> StreamingHttpResponse:
    """A streamed CSV download of `rows` under `header` (read as the server
    reads: a worker thread a chunk at a time under ASGI, plainly elsewhere)."""
    lines = csv_lines(header, rows)
    content = (
        _streamed(lines) if isinstance(request, ASGIRequest) else (line.encode() for line in lines)
    )
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
