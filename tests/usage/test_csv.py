"""usage/csv.py: cells a spreadsheet never runs, lines as the csv module quotes them."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from usage.csv import csv_cell, csv_lines


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"])
def test_a_cell_that_starts_like_a_formula_gets_a_single_quote(text):
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("pb-123", "pb-123"),
        ("a=b", "a=b"),
        (42, "42"),
        (Decimal("0.5"), "0.5"),
        (None, ""),
        ("", ""),
    ],
)
def test_other_cells_are_their_text(value, text):
    assert csv_cell(value) == text


def test_lines_read_back_as_the_escaped_cells():
    rows = [
        ["id", "note"],
        ["pb-1", '=HYPERLINK("x", "y")'],
        ["pb-2", 'comma, and "quote"\nnewline'],
    ]

    text = "".join(csv_lines(rows))

    assert list(csv.reader(io.StringIO(text))) == [
        ["id", "note"],
        ["pb-1", '\'=HYPERLINK("x", "y")'],
        ["pb-2", 'comma, and "quote"\nnewline'],
    ]


def test_each_row_is_one_string():
    assert list(csv_lines([["a", 1], ["b", 2]])) == ["a,1\r\n", "b,2\r\n"]
