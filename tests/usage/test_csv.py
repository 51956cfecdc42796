"""usage/csv.py: cells no spreadsheet runs as formulas, and the streamed lines."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from usage.csv import ROWS_PER_CHUNK, csv_cell, csv_lines


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+2", "'=1+2"),
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("gpt-5.4-mini", "gpt-5.4-mini"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_text_a_spreadsheet_would_run_as_a_formula_is_quoted(text, cell):
    assert csv_cell(text) == cell


def test_numbers_stay_numbers_even_when_negative():
    assert [csv_cell(-3), csv_cell(Decimal("-0.5")), csv_cell(2.5)] == ["-3", "-0.5", "2.5"]


def test_decimals_keep_every_digit_and_none_is_empty():
    assert csv_cell(Decimal("0.000000000001")) == "0.000000000001"
    assert csv_cell(None) == ""


def test_times_are_iso_with_their_offset():
    assert csv_cell(datetime(2026, 3, 14, 9, 0, tzinfo=UTC)) == "2026-03-14T09:00:00+00:00"


def test_lines_come_in_chunks_and_read_back_as_the_rows():
    rows = [[i, f"=row {i}"] for i in range(ROWS_PER_CHUNK * 2 + 3)]

    chunks = list(csv_lines(["n", "name"], rows))

    assert len(chunks) == 3
    read = list(csv.reader(io.StringIO("".join(chunks))))
    assert read[0] == ["n", "name"]
    assert read[1:] == [[str(i), f"'=row {i}"] for i in range(len(rows))]


def test_the_header_is_escaped_too():
    [chunk] = list(csv_lines(["=evil"], []))

    assert chunk == "'=evil\r\n"
