"""Counting requests refused for want of any key: one upsert per minute and client."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection, transaction

from usage.models import RefusedTally


def refused_tally_add(*, counts: Iterable[tuple[datetime, str, int]]) -> None:
    """Add each (minute, client, refused) to its row, made if need be. Every
    worker and host adds to the same rows: an upsert, never a read first."""
    table = connection.ops.quote_name(RefusedTally._meta.db_table)
    statement = (
        f"INSERT INTO {table} (minute, client, refused) VALUES (%s, %s, %s) "
        f"ON CONFLICT (minute, client) DO UPDATE SET refused = {table}.refused + excluded.refused"
    )
    # In one order everywhere: two workers adding to the same rows wait for
    # each other instead of deadlocking.
    rows = [
        (connection.ops.adapt_datetimefield_value(minute), client, refused)
        for minute, client, refused in sorted(counts)
    ]
    if not rows:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(statement, rows)
