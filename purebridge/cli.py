"""Option types the management commands share. Each raises ArgumentTypeError:
argparse then prints the usage and the message and exits 2, where a
CommandError raised there would escape as a traceback."""

from __future__ import annotations

from argparse import ArgumentTypeError
from datetime import UTC, datetime, time

from django.utils import timezone


def positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ArgumentTypeError(f"{value!r} is not a whole number of 1 or more")
    return int(value)


def future_moment(value: str) -> datetime:
    """An ISO date (the end of that day, UTC) or date and time, still to come."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not an ISO date or date-time (2026-12-31)") from None
    if len(value) == 10:
        parsed = datetime.combine(parsed.date(), time.max)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    if parsed <= timezone.now():
        raise ArgumentTypeError(f"{value} is in the past")
    return parsed
