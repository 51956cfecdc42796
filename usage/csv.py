"""CSV that a spreadsheet opens safely: no cell runs as a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

# What a spreadsheet reads as the start of a formula (OWASP's list: tab and
# carriage return too, as some strip them and read what follows).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A cell's text; one that starts like a formula gets a leading single
    quote, which spreadsheets show as text and never evaluate."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """Each row as one CSV line (quoted where needed, CRLF-ended), every cell
    through csv_cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
