"""The usage writer: every column as the entry had it, once, whatever the database did."""

import logging
from collections import Counter
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection, models
from django.utils import timezone

from keys.models import ApiKey
from tests.helpers import database_url_for_tests, usage_entry
from usage import recorder
from usage.models import UsageRecord
from usage.recorder import UsageEntry


def every_field(key) -> UsageEntry:
    """An entry with no field left at its default, and text COPY must escape."""
    return UsageEntry(
        created_at=datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=ZoneInfo("Europe/Paris")),
        request_id="pb-every-field",
        endpoint="responses",
        status=502,
        account_id=key.account_id,
        api_key_id=key.id,
        model="gpt-5.1",
        provider="openai",
        upstream_model="gpt-5.1-2026-01-01",
        stream=True,
        prompt_tokens=2_147_483_647,
        cached_tokens=23456,
        cache_write_tokens=789,
        completion_tokens=7,
        reasoning_tokens=3,
        estimated=True,
        estimate_reason="usage_invalid:cached_tokens",
        # All 24 digits, 12 after the point: a float on the way would lose some.
        cost_usd=Decimal("123456789012.123456789012"),
        error_type="upstream_error",
        latency_ms=1234,
        ttft_ms=56,
        upstream_request_id="req_\\N",
        client_request_id="tab\there, new\nline, back\\slash, «ünïcode»",
        attempts=[
            {"provider": "openai", "upstream_model": "a", "status": 500, "error": 'q"\\', "ms": 9},
            {"provider": "other", "upstream_model": "b", "status": 200, "error": "", "ms": 3400},
        ],
    )


def nulls(key) -> UsageEntry:
    """A request refused before its key was known."""
    return UsageEntry(
        created_at=timezone.now(),
        request_id="pb-nulls",
        endpoint="chat.completions",
        status=401,
        error_type="invalid_api_key",
    )


def columns(source) -> dict:
    """Every column an entry gives a record, read from a record or an entry."""
    return {
        f.attname: getattr(source, f.attname)
        for f in UsageRecord._meta.concrete_fields
        if f.attname not in {"id", "recorded_at"}
    }


@pytest.mark.parametrize("make_entry", [every_field, nulls])
def test_every_column_of_a_record_is_what_the_entry_had(own_recorder, make_key, make_entry):
    key, _ = make_key()
    written = make_entry(key)
    before = timezone.now()

    own_recorder.record(written)
    assert own_recorder.flush(10)

    record = UsageRecord.objects.get()
    assert columns(record) == columns(written)
    assert before <= record.recorded_at <= timezone.now()


def test_a_batch_written_again_leaves_each_record_once(make_key):
    key, _ = make_key()
    first = [usage_entry(key, "pb-1"), usage_entry(key, "pb-2")]

    recorder._write(first)
    # The retry of a batch whose commit went through but whose acknowledgement
    # was lost, with a record the first write did not have.
    recorder._write([*first, usage_entry(key, "pb-3")])

    ids = Counter(UsageRecord.objects.values_list("request_id", flat=True))
    assert ids == {"pb-1": 1, "pb-2": 1, "pb-3": 1}


def test_a_batch_whose_acknowledgement_was_lost_is_retried_and_recorded_once(
    own_recorder, make_key, monkeypatch, caplog
):
    key, _ = make_key()
    store = recorder._store
    lost = []

    def store_then_lose_the_first_acknowledgement(batch, *how, **options):
        store(batch, *how, **options)
        if not lost:
            lost.append(len(batch))
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(recorder, "_store", store_then_lose_the_first_acknowledgement)

    for request_id in ("pb-1", "pb-2"):
        own_recorder.record(usage_entry(key, request_id))
    assert own_recorder.flush(10)

    assert lost
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["pb-1", "pb-2"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and "dropped" in r.message]
    assert ApiKey.objects.get(pk=key.pk).last_used_at is not None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
def test_a_batch_whose_connection_dies_during_copy_is_kept_and_written_again(
    own_recorder, make_key, monkeypatch
):
    key, _ = make_key()
    url = database_url_for_tests()
    copy = recorder._copy
    killed = []

    def copy_on_a_killed_connection(batch):
        if not killed:
            connection.ensure_connection()
            killed.append(connection.connection.info.backend_pid)
            with psycopg.connect(url, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", [killed[0]])
        copy(batch)

    monkeypatch.setattr(recorder, "_copy", copy_on_a_killed_connection)

    own_recorder.record(usage_entry(key, "pb-survivor"))
    assert own_recorder.flush(10), "the writer gave up on the batch or died"

    assert killed
    assert UsageRecord.objects.get().request_id == "pb-survivor"


def test_a_record_column_without_a_source_in_the_entry_is_a_configuration_error():
    region = models.CharField(max_length=8)
    region.set_attributes_from_name("region")

    with pytest.raises(ImproperlyConfigured, match="usage_usagerecord.region"):
        recorder._copy_plan("usage_usagerecord", [*UsageRecord._meta.concrete_fields, region])


def test_a_record_the_database_refuses_is_clamped_and_written_not_dropped(
    own_recorder, make_key, caplog
):
    key, _ = make_key()
    absurd = usage_entry(
        key,
        "pb-absurd",
        prompt_tokens=10**12,
        completion_tokens=-5,
        cost_usd=Decimal(10) ** 15,
        model="m" * 500,
        status=70_000,
    )

    own_recorder.record(usage_entry(key, "pb-fine", prompt_tokens=3))
    own_recorder.record(absurd)
    assert own_recorder.flush(10)

    clamped, fine = UsageRecord.objects.order_by("request_id")
    assert (fine.request_id, fine.prompt_tokens, fine.estimated) == ("pb-fine", 3, False)
    assert clamped.request_id == "pb-absurd"
    assert (clamped.prompt_tokens, clamped.completion_tokens) == (2_147_483_647, 0)
    assert clamped.cost_usd == Decimal("999999999999.999999999999")
    assert (len(clamped.model), clamped.status) == (128, 32767)
    assert clamped.estimated is True
    assert clamped.estimate_reason.startswith("clamped:")
    assert {"prompt_tokens", "completion_tokens", "cost_usd", "model", "status"} <= set(
        clamped.estimate_reason.removeprefix("clamped:").split(",")
    )
    assert not [r for r in caplog.records if "dropped" in r.getMessage()]
