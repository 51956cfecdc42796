"""GET /usage/requests/export.csv: the log as CSV, for the signed-in account
only, with the log's filters, times in the account's zone, no cell a
spreadsheet would run, and streamed with flat memory."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx2
import pytest

from tests.usage.log_support import T0, many, record
from tests.web import browser_like_client
from usage.log import Filters
from usage.log_export import export_rows

EXPORT = "/usage/requests/export.csv"


@pytest.fixture
def other_account(transactional_db):
    from accounts.models import User

    return User.objects.create_user("outsider@example.com", "pw-outsider-1234").account


def rows_of(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_rows_match_the_records_newest_first_in_the_accounts_zone(owner_client, account, make_key):
    account.timezone = "Asia/Tokyo"
    account.save()
    key, _ = make_key(name="ci-runner")
    older = record(
        account,
        key,
        at=datetime(2026, 3, 9, 15, 0, 0, 250_000, tzinfo=UTC),
        cached_tokens=300,
        reasoning_tokens=40,
        stream=True,
        ttft_ms=90,
    )
    newer = record(
        account,
        key,
        at=datetime(2026, 3, 9, 16, 0, tzinfo=UTC),
        status=502,
        error_type="upstream_error",
        estimated=True,
        estimate_reason="usage_missing:upstream_failed",
        cost_usd=Decimal("0.000001250000"),
    )

    response = owner_client.get(EXPORT)

    rows = rows_of(response)
    assert response["Content-Disposition"].startswith('attachment; filename="purebridge-requests-')
    assert [row["request_id"] for row in rows] == [newer.request_id, older.request_id]
    first, second = rows
    assert second["time (Asia/Tokyo)"] == "2026-03-10 00:00:00.250"
    assert first["time (Asia/Tokyo)"] == "2026-03-10 01:00:00.000"
    assert second | {"time (Asia/Tokyo)": ""} == {
        "time (Asia/Tokyo)": "",
        "request_id": older.request_id,
        "upstream_request_id": older.upstream_request_id,
        "client_request_id": older.client_request_id,
        "key": "ci-runner",
        "api_key_id": str(key.pk),
        "endpoint": "chat.completions",
        "model": "gpt-test",
        "provider": "fake",
        "upstream_model": "fake-1",
        "stream": "true",
        "status": "200",
        "error_type": "",
        "prompt_tokens": "1000",
        "cached_tokens": "300",
        "cache_write_tokens": "0",
        "completion_tokens": "200",
        "reasoning_tokens": "40",
        "estimated": "false",
        "estimate_reason": "",
        "cost_usd": "0.00325",
        "latency_ms": "420",
        "ttft_ms": "90",
    }
    assert (first["status"], first["error_type"], first["estimated"]) == (
        "502",
        "upstream_error",
        "true",
    )
    assert first["estimate_reason"] == "usage_missing:upstream_failed"
    assert (first["cost_usd"], first["ttft_ms"]) == ("0.00000125", "")


def test_cells_that_start_like_a_formula_are_escaped(owner_client, account):
    record(account, client_request_id='=HYPERLINK("http://evil.example","x")')
    record(account, client_request_id="+1+2", at=T0 - timedelta(seconds=1))
    record(account, client_request_id="-2", at=T0 - timedelta(seconds=2))
    record(account, client_request_id="@SUM(A1)", at=T0 - timedelta(seconds=3))
    record(account, client_request_id="plain-id", at=T0 - timedelta(seconds=4))

    rows = rows_of(owner_client.get(EXPORT))

    assert [row["client_request_id"] for row in rows] == [
        '\'=HYPERLINK("http://evil.example","x")',
        "'+1+2",
        "'-2",
        "'@SUM(A1)",
        "plain-id",
    ]


def test_the_export_applies_the_logs_filters(owner_client, account, make_key):
    key, _ = make_key()
    wanted = record(account, key, status=429, model="small")
    record(account, key, status=200, model="small")
    record(account, key, status=429, model="large")
    record(account, status=429, model="small")

    rows = rows_of(owner_client.get(EXPORT, {"key": key.pk, "status": "4xx", "model": "small"}))

    assert [row["request_id"] for row in rows] == [wanted.request_id]


def test_the_export_ignores_the_page_it_was_asked_from(owner_client, account):
    many(account, count=3)

    rows = rows_of(owner_client.get(EXPORT, {"cursor": ""}))

    assert len(rows) == 3


def test_outsider_exports_none_of_the_owners_records(account, other_account, make_key):
    record(account)
    theirs = record(other_account)
    owner_key, _ = make_key()
    outsider = browser_like_client(other_account.users.get())

    assert [row["request_id"] for row in rows_of(outsider.get(EXPORT))] == [theirs.request_id]
    refused = outsider.get(EXPORT, {"key": owner_key.pk})
    assert refused.status_code == 400
    assert "key: Select a valid choice" in refused.content.decode()


def test_every_record_once_across_many_chunks_with_equal_times(account):
    rows = many(account, count=25, step=timedelta(0))
    rows += many(account, count=12, start=T0 - timedelta(minutes=1))
    expected = sorted(rows, key=lambda r: (r.created_at, r.pk), reverse=True)

    rows = list(export_rows(account=account, filters=Filters(), chunk=4))

    assert [row[1] for row in rows] == [r.request_id for r in expected]


def test_streaming_50k_rows_through_the_server_keeps_memory_flat(live, account):
    """Through uvicorn and Django's ASGI handler, as in production: Django
    would read a plain iterator whole before sending (one string per row,
    tens of megabytes here). The peak of what Python allocates while the
    export streams stays near one chunk of rows."""
    many(account, count=50_000, step=timedelta(milliseconds=10))
    session = browser_like_client(account.users.get()).cookies["sessionid"].value

    with httpx2.Client(base_url=live.url, cookies={"sessionid": session}, timeout=120) as http:
        # A first export of nothing: what the server imports and caches on
        # its first console request is not the export's memory.
        assert http.get(EXPORT, params={"model": "none"}).status_code == 200
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            received = lines = 0
            with http.stream("GET", EXPORT) as response:
                assert response.status_code == 200
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    lines += chunk.count(b"\r\n")
            peak = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()

    assert lines == 50_001
    print(f"exported {received / 1e6:.1f} MB, peak allocation {peak / 1e6:.1f} MB")
    assert peak < 4_000_000 and received > 7_000_000
