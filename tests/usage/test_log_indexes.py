"""Each of the request log's reads can walk an index of its own, in the
log's order, from where its page starts (usage/models.py, UsageRecord.Meta).

The plans are PostgreSQL's with sequential scans, bitmap scans and sorts
priced out of reach, on a few hundred rows: whether an index *can* serve a
query (its columns, its order, its partial index's condition implied by the
query) does not depend on the table's size, and a plan that has to sort or
scan the table says the index is missing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction

from tests.usage.log_support import T0, many
from usage.log import NEWEST_FIRST, Cursor, Filters, _beyond, log_records


@pytest.fixture
def seeded(account, make_key):
    key, _ = make_key()
    many(account, key, count=100)
    many(account, key, count=100, status=502, model="rare", estimated=True, stream=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE usage_usagerecord")
    return account, key


def plan(queryset, *, ordered: bool = True) -> str:
    """The plan; `ordered`: the index must give the log's order (no sort)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        if ordered:
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        return queryset.explain()


def page_query(account, filters: Filters, cursor: Cursor | None = None):
    records = log_records(account=account, filters=filters)
    if cursor is not None:
        records = records.filter(_beyond(cursor))
    return records.order_by(*NEWEST_FIRST)[:51]


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "usage_account_recent"),
        ({"model": "rare"}, "usage_account_model"),
        ({"status_class": "5xx"}, "usage_account_errors"),
        ({"status_class": "4xx"}, "usage_account_errors"),
        ({"estimated": True}, "usage_account_estimated"),
        ({"streamed": True}, "usage_account_recent"),
        ({"status_class": "2xx"}, "usage_account_recent"),
    ],
)
def test_a_filtered_page_walks_its_index_in_order_from_the_cursor(seeded, filters, index):
    account, _ = seeded
    cursor = Cursor(T0 - timedelta(seconds=50), 10**9)

    for query in (
        page_query(account, Filters(**filters)),
        page_query(account, Filters(**filters), cursor),
    ):
        text = plan(query)
        assert index in text, text
        assert "Sort" not in text, text
    assert "created_at <=" in plan(page_query(account, Filters(**filters), cursor))


@pytest.mark.parametrize(
    ("filters", "index"),
    [({}, "usage_key_recent"), ({"status_class": "5xx"}, "usage_key_errors")],
)
def test_a_keys_page_walks_the_keys_index(seeded, filters, index):
    account, key = seeded

    text = plan(page_query(account, Filters(api_key=key, **filters)))

    assert index in text and "Sort" not in text, text


def test_a_search_looks_up_each_of_the_three_ids_in_an_index(seeded):
    account, _ = seeded

    # A few records match: sorting them is cheap, reading the account's
    # records in order until they turn up is not.
    text = plan(page_query(account, Filters(search="ticket-1")), ordered=False)

    for index in (
        "usage_usagerecord_request_id",
        "usage_upstream_request_id",
        "usage_client_request_id",
    ):
        assert index in text, text
