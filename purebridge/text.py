"""Text typed by people that ends up where a line break means something else:
an email header (CR LF starts a new header, and Django refuses the whole
email), a log line, a one-line label."""

from __future__ import annotations

import re

# C0 and C1 controls (CR, LF, tab, NEL, ...) and the Unicode line and
# paragraph separators: every character Python's str.splitlines() breaks at.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_RUNS = re.compile("\\s*[\x00-\x1f\x7f-\x9f\u2028\u2029][\\s\x00-\x1f\x7f-\x9f]*")


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


def one_line(text: str) -> str:
    """`text` with each run of control characters (and the spaces around it)
    made one space: safe in an email header whatever was typed."""
    return _CONTROL_RUNS.sub(" ", text).strip()
